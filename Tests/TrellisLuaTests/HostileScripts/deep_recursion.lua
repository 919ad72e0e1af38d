-- expect: runtime|memoryExceeded|budgetExceeded on_message
-- recurses without end
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_message = function(state)
  local function down(n) return 1 + down(n + 1) end
  return down(1)
end
return script
