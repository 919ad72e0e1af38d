-- expect: badReturn migrate
-- migrate returns strings that are not peer ids
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx) return old, { "everyone", "not a peer" } end,
}
