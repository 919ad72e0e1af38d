-- expect: memoryExceeded join
-- grows a table without bound
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  local t = {}
  for i = 1, math.maxinteger do t[i] = ("x"):rep(4096) .. i end
end
return script
