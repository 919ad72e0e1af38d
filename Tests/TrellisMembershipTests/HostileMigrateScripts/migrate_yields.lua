-- expect: runtime migrate
-- migrate yields, as if the host were a coroutine scheduler
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old) coroutine.yield(old) return old end,
}
