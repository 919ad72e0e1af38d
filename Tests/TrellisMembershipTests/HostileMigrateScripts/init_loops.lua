-- expect: budgetExceeded init
-- has no migrate, so the swap runs init, which spins forever
local ok = function(state) return state end
return {
  name = "hostile_init", version = 2,
  init = function(ctx) while true do end end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
