-- expect: memoryExceeded join
-- catches memory errors and tries again, keeping what it got
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  state.hoard = {}
  while true do pcall(function() state.hoard[#state.hoard + 1] = string.rep("y", 1 << 20) end) end
end
return script
