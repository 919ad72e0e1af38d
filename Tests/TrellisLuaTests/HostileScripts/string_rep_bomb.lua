-- expect: memoryExceeded join
-- asks string.rep for a gigabyte
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state) return state, { string.rep("x", 1 << 30) } end
return script
