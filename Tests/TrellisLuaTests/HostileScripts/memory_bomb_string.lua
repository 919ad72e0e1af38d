-- expect: memoryExceeded join
-- doubles a string until memory runs out
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  local s = "x"
  while true do s = s .. s end
end
return script
