-- expect: badReturn migrate
-- migrate returns the members as a map
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx) return old, { first = ctx.self } end,
}
