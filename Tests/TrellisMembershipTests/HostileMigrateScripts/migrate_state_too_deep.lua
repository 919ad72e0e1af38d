-- expect: badReturn migrate
-- migrate keeps a state nested 300 levels deep, deeper than a value may go: the swap is refused
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old)
    local state = {}
    for _ = 1, 300 do state = { state } end
    return state
  end,
}
