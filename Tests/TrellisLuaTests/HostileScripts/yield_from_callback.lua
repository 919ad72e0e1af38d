-- expect: runtime on_tick
-- yields from the callback itself
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_tick = function(state) coroutine.yield(1) return state end
return script
