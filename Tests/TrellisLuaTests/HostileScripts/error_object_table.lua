-- expect: runtime on_message
-- raises a table as its error
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_message = function(state) error({ code = 42 }) end
return script
