-- expect: budgetExceeded on_tick
-- spins forever in a callback
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_tick = function(state) while true do end end
return script
