-- expect: runtime|memoryExceeded|budgetExceeded migrate
-- migrate recurses without end
local ok = function(state) return state end
local function down(n) return 1 + down(n + 1) end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old) return { depth = down(1) } end,
}
