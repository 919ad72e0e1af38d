-- static.lua: the members are exactly the peer ids given in config.members.
--
-- Nothing is negotiated: every node is told the same list and keeps it. A peer that goes
-- down stays a member, so the node keeps reconnecting to it until it comes back.
--
-- config: members = { "n1@127.0.0.1:7101", "n2@127.0.0.1:7102", ... }

local function members_from(config, self)
  local list = { self }
  for _, peer in ipairs(config.members or {}) do
    if peer ~= self then list[#list + 1] = peer end
  end
  return list
end

local function unchanged(state) return state end

return {
  name = "static",
  version = 1,

  init = function(ctx)
    local members = members_from(ctx.config, ctx.self)
    return { self = ctx.self, members = members }, members
  end,

  join = unchanged,        -- the list is fixed: joining through a seed changes nothing
  on_message = unchanged,
  on_tick = unchanged,

  leave = function(state, peer)
    if peer == state.self then return state, { state.self } end  -- leaving: drop every connection
    return state
  end,
}
