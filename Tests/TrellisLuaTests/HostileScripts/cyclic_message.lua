-- expect: badReturn join
-- sends a table that contains itself
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  local t = {}
  t.self = t
  return state, nil, { { to = peer, msg = t } }
end
return script
