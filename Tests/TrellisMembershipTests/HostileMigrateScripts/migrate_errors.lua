-- expect: runtime migrate
-- migrate raises
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx) error("cannot migrate from version " .. old_version) end,
}
