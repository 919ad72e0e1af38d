-- expect: runtime join
-- loads text that reaches for os through load
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state)
  local f = assert(load("return os.getenv(\"HOME\")"))
  f()
  return state
end
return script
