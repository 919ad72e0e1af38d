-- expect: runtime join
-- migrate succeeds and keeps every member, then every callback raises
local function fail(state) error("callback refuses, state " .. tostring(state.n)) end
return {
  name = "hostile_callbacks", version = 2,
  init = function(ctx) return { n = 0 } end,
  join = fail, leave = fail, on_message = fail, on_tick = fail, on_up = fail, on_down = fail,
  migrate = function(old, old_version, ctx)
    local members = {}
    for peer in pairs(old.members) do members[#members + 1] = peer end
    table.sort(members)
    return { n = old_version }, members
  end,
}
