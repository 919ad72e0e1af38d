-- expect: budgetExceeded on_tick
-- a to-be-closed variable whose __close loops while the budget error unwinds the callback
return {
  name = "closer", version = 1,
  init = function(ctx) return {} end,
  join = function(s) return s end, leave = function(s) return s end, on_message = function(s) return s end,
  on_tick = function(s)
    local guard <close> = setmetatable({}, { __close = function() while true do end end })
    while true do end
  end,
}
