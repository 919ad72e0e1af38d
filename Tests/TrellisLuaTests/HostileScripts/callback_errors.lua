-- expect: runtime on_message
-- raises an error
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_message = function(state, from, msg) error("cannot handle " .. tostring(msg.type)) end
return script
