-- expect: memoryExceeded migrate
-- migrate asks string.rep for a gigabyte and returns it as its state
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old) return { blob = string.rep("x", 1 << 30) } end,
}
