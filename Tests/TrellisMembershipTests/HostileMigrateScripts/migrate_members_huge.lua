-- expect: badReturn migrate
-- migrate returns 120,000 members (this node, over and over): more values than one return may hold
local ok = function(state) return state end
return {
  name = "hostile_migrate", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = ok, leave = ok, on_message = ok, on_tick = ok,
  migrate = function(old, old_version, ctx)
    local members = {}
    for i = 1, 120000 do members[i] = ctx.self end
    return old, members
  end,
}
