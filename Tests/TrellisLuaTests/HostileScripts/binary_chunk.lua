-- expect: runtime join
-- loads a binary chunk
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  local f = assert(load("\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86", "bin", "b"))
  return state
end
return script
