-- expect: badReturn join
-- sends a value nested 100 levels deep
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  local t = {}
  for _ = 1, 100 do t = { t } end
  return state, nil, { { to = peer, msg = t } }
end
return script
