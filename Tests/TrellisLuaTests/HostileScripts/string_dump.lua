-- expect: runtime join
-- tries string.dump to make bytecode
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state) return state, { string.dump(function() end) } end
return script
