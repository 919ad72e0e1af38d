-- expect: badReturn migrate
-- migrate returns a function among the members
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx) return old, { ctx.self, function() return ctx.self end } end,
}
