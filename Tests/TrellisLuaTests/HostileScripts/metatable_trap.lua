-- expect: none none
-- returns members guarded by metamethods that loop; reads are raw, so none run
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  local members = setmetatable({ peer }, { __index = function() while true do end end, __len = function() while true do end end })
  return state, members
end
return script
