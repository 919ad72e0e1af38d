-- expect: badReturn migrate
-- migrate returns a members array that contains itself
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx)
    local members = { ctx.self }
    members[2] = members
    return old, members
  end,
}
