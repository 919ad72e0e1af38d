-- expect: memoryExceeded migrate
-- migrate grows a table of strings without bound
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old)
    local hoard = {}
    for i = 1, math.maxinteger do hoard[i] = ("x"):rep(4096) .. i end
  end,
}
