-- client_server.lua: servers form a full mesh among themselves; clients connect to servers only.
--
-- A node's role is its `role` tag ("server" or "client"; config.role overrides it). Servers
-- see everyone, clients see the servers. Whoever talks to a node says its role and the
-- servers it knows; a node greets the servers it has not met yet, so a server (or a client)
-- becomes a member only by answering, and stale lists never bring back a dead server.
--
-- Messages: hello (answered with welcome), welcome, leave.

local function sorted(set)
  local list = {}
  for peer in pairs(set) do list[#list + 1] = peer end
  table.sort(list)
  return list
end

local function members(s)
  local list = sorted(s.servers)
  if s.role == "server" then
    for _, client in ipairs(sorted(s.clients)) do list[#list + 1] = client end
  end
  list[#list + 1] = s.self
  return list
end

local function say(s, to, kind)
  return { to = to, msg = { type = kind, role = s.role, servers = sorted(s.servers) } }
end

-- `from` talked to us: record it by its role, and greet the servers it knows that we don't.
-- A server that meets a new server tells its clients at once.
local function contact(s, from, msg, out)
  s.lost[from] = nil
  if msg.role == "server" then
    local new = not s.servers[from]
    s.servers[from] = true
    if new and s.role == "server" then
      for _, client in ipairs(sorted(s.clients)) do out[#out + 1] = say(s, client, "welcome") end
    end
  elseif s.role == "server" then
    s.clients[from] = true
  end
  for _, server in ipairs(msg.servers or {}) do
    if server ~= s.self and not s.servers[server] then out[#out + 1] = say(s, server, "hello") end
  end
end

return {
  name = "client_server",
  version = 1,
  tick = 1000,

  init = function(ctx)
    local role = ctx.config.role or ctx.tags.role or "client"
    local s = { self = ctx.self, role = role, servers = {}, clients = {}, lost = {}, left = false }
    if role == "server" then s.servers[ctx.self] = true end
    return s
  end,

  join = function(s, seed)
    s.left = false
    return s, nil, { say(s, seed, "hello") }
  end,

  leave = function(s, peer)
    local out = {}
    if peer == s.self then
      for _, p in ipairs(members(s)) do
        if p ~= s.self then out[#out + 1] = { to = p, msg = { type = "leave" } } end
      end
      s.servers, s.clients, s.lost, s.left = {}, {}, {}, true
    end
    return s, members(s), out
  end,

  on_message = function(s, from, msg)
    if s.left then return s end
    local out = {}
    if msg.type == "leave" then
      s.servers[from], s.clients[from] = nil, nil
    elseif msg.type == "hello" or msg.type == "welcome" then
      contact(s, from, msg, out)
      if msg.type == "hello" then out[#out + 1] = say(s, from, "welcome") end
    end
    return s, members(s), out
  end,

  -- Servers tell one random member about the servers (so clients learn of new ones); everyone
  -- knocks once more on a lost server's door.
  on_tick = function(s)
    if s.left then return s end
    local out = {}
    local others = members(s)
    table.remove(others)                          -- drop self (always last)
    if s.role == "server" and #others > 0 then out[#out + 1] = say(s, others[math.random(#others)], "welcome") end
    local lost = sorted(s.lost)
    if #lost > 0 then out[#out + 1] = say(s, lost[math.random(#lost)], "hello") end
    return s, nil, out
  end,

  on_down = function(s, peer)
    if s.servers[peer] then s.lost[peer] = true end
    s.servers[peer], s.clients[peer] = nil, nil
    return s, members(s)
  end,
}
