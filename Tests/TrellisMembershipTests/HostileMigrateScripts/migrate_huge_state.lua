-- expect: badReturn migrate
-- migrate keeps a 120,000-entry state: the swap is refused, since it is too big to carry on
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old)
    local state = {}
    for i = 1, 120000 do state[i] = i end
    return state
  end,
}
