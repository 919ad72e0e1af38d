-- expect: runtime join
-- migrate returns nothing (nil state, members unchanged); the callbacks then index the nil state
local count = function(state) state.n = state.n + 1 return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = count, leave = count, on_message = count, on_tick = count,
  migrate = function(old) end,
}
