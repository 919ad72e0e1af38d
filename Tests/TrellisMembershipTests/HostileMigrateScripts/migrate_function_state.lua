-- expect: badReturn migrate
-- migrate keeps functions in its state: the swap is refused, since no later swap could carry it
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old) return { old = old, handler = function() return old end } end,
}
