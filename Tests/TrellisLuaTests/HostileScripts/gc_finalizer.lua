-- expect: runtime join
-- installs a __gc finalizer that would run outside any callback
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  setmetatable({}, { __gc = function() while true do end end })
  return state
end
return script
