-- expect: runtime migrate
-- empties the old state it was handed, then raises: the running script's state must not see it
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx)
    for key in pairs(old) do old[key] = nil end
    old.members = { ["evil@127.0.0.1:1"] = true }
    error("wiped")
  end,
}
