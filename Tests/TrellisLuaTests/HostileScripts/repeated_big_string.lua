-- expect: badReturn join
-- sends one 1 MiB string 90,000 times over: 94 GB once encoded, from 1 MiB of memory
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state, peer)
  local big, t = string.rep("x", 1 << 20), {}
  for i = 1, 90000 do t[i] = big end
  return state, nil, { { to = peer, msg = t } }
end
return script
