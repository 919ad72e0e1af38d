-- expect: budgetExceeded on_tick
-- spins inside coroutines, resuming them from a loop
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.on_tick = function(state)
  while true do
    local co = coroutine.create(function() while true do coroutine.yield() end end)
    for _ = 1, 1e9 do coroutine.resume(co) end
  end
end
return script
