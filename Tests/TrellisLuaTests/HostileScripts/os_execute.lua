-- expect: runtime join
-- tries os.execute
local ok = function(state) return state end
local script = {
  name = "hostile", version = 1,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
}
script.join = function(state) os.execute("touch /tmp/trellis-pwned") return state end
return script
