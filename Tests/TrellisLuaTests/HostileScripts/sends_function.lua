-- expect: badReturn join
-- sends a function
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  return state, nil, { { to = peer, msg = { handler = function() end } } }
end
return script
