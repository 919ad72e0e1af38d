-- expect: badReturn join
-- sends a small table that expands to 2^40 values
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  local t = {}
  for _ = 1, 40 do t = { t, t } end
  return state, nil, { { to = peer, msg = t } }
end
return script
