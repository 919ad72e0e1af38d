-- expect: runtime migrate
-- migrate reaches for os to run a command
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old) os.execute("touch /tmp/trellis-pwned-by-migrate") return old end,
}
