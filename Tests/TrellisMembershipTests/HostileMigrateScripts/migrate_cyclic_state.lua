-- expect: badReturn migrate
-- migrate keeps a state that contains itself: the swap is refused, since no later swap could carry it
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old)
    local state = { old = old }
    state.again = state
    return state
  end,
}
