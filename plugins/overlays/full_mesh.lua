-- full_mesh.lua: every node is a member of every other node.
--
-- A peer becomes a member only by talking to us directly; lists of members travel in
-- messages just to tell a node whom to say hello to. So stale gossip never brings back a
-- node that died or left. Peers lost to failures are retried on every tick.
--
-- Messages: hello (reply wanted), welcome (reply to hello, and periodic gossip), leave.
-- config: none.

local function sorted(set)
  local list = {}
  for peer in pairs(set) do list[#list + 1] = peer end
  table.sort(list)
  return list
end

local function say(to, kind, state)
  return { to = to, msg = { type = kind, members = sorted(state.members) } }
end

-- A peer talked to us: it is a member; greet any member it knows that we don't.
local function contact(state, from, known, out)
  state.members[from], state.lost[from] = true, nil
  for _, peer in ipairs(known or {}) do
    if not state.members[peer] then out[#out + 1] = say(peer, "hello", state) end
  end
end

local function random_key(set)
  local list = sorted(set)
  if #list > 0 then return list[math.random(#list)] end
end

return {
  name = "full_mesh",
  version = 1,
  tick = 1000,

  init = function(ctx)
    return { self = ctx.self, members = { [ctx.self] = true }, lost = {}, left = false }
  end,

  -- Hot swap from another overlay: every peer it knew (its `members`, as a set or a list,
  -- and any `active` and `passive` views) becomes a member at once.
  migrate = function(old, old_version, ctx)
    local state = { self = ctx.self, members = { [ctx.self] = true }, lost = {}, left = false }
    if type(old) ~= "table" then old = {} end   -- the old script kept no table: start afresh
    for key, value in pairs(old.members or {}) do
      local peer = value == true and key or value
      if type(peer) == "string" then state.members[peer] = true end
    end
    for _, list in ipairs({ old.active or {}, old.passive or {} }) do
      for _, peer in ipairs(list) do state.members[peer] = true end
    end
    return state, sorted(state.members)
  end,

  join = function(state, seed)
    state.left = false
    return state, nil, { say(seed, "hello", state) }
  end,

  leave = function(state, peer)
    local out = {}
    if peer == state.self then
      -- Goodbye to the members, and to the peers we lost touch with: they may still count us.
      for _, set in ipairs({ state.members, state.lost }) do
        for _, p in ipairs(sorted(set)) do
          if p ~= state.self then out[#out + 1] = { to = p, msg = { type = "leave" } } end
        end
      end
      state.members, state.lost, state.left = { [state.self] = true }, {}, true
    else
      state.members[peer] = nil
    end
    return state, sorted(state.members), out
  end,

  on_message = function(state, from, msg)
    if state.left then return state end
    local out = {}
    if msg.type == "leave" then
      state.members[from] = nil
    else
      contact(state, from, msg.members, out)
      if msg.type == "hello" then out[#out + 1] = say(from, "welcome", state) end
    end
    return state, sorted(state.members), out
  end,

  on_tick = function(state, now)
    if state.left then return state end
    local out = {}
    local others = {}
    for p in pairs(state.members) do if p ~= state.self then others[p] = true end end
    local gossip_to = random_key(others)      -- anti-entropy with one random member
    if gossip_to then out[#out + 1] = say(gossip_to, "welcome", state) end
    local retry = random_key(state.lost)      -- and one knock on a lost peer's door
    if retry then out[#out + 1] = say(retry, "hello", state) end
    return state, nil, out
  end,

  on_down = function(state, peer, reason)
    if state.members[peer] and peer ~= state.self then
      state.members[peer], state.lost[peer] = nil, true
    end
    return state, sorted(state.members)
  end,
}
