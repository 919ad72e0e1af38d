-- hyparview.lua: HyParView (Leitão, Pereira and Rodrigues, DSN 2007) as a Trellis overlay.
--
-- Each node keeps a small *active view* of peers it is connected to (its members) and a
-- larger *passive view* of peers it knows, as backups. Joins spread by random walks, a
-- periodic shuffle refreshes the passive views, and when an active peer fails, a passive
-- one is promoted. Active views stay symmetric: a node adds a peer only when that peer adds
-- it too, and tells a peer it drops (`disconnect`).
--
-- Messages (msg.type): join, forward_join, connect, neighbor, neighbor_reply, disconnect
-- (with leaving = true when the sender leaves the cluster), shuffle, shuffle_reply.
-- config (defaults from the paper): active = 5, passive = 30, arwl = 6, prwl = 3, ka = 3,
-- kp = 4, neighbor_timeout = 2000 (ms to wait for a neighbor_reply).
-- The shuffle runs on every tick.

local defaults = { active = 5, passive = 30, arwl = 6, prwl = 3, ka = 3, kp = 4, neighbor_timeout = 2000 }

local function sorted(set)
  local list = {}
  for peer in pairs(set) do list[#list + 1] = peer end
  table.sort(list)                        -- sorted, so the same seed gives the same run
  return list
end

local function size(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

-- Up to n distinct random peers of set, skipping those in `except` (a set or nil).
local function sample(set, n, except)
  local pool = {}
  for _, peer in ipairs(sorted(set)) do
    if not (except and except[peer]) then pool[#pool + 1] = peer end
  end
  local picked = {}
  while #picked < n and #pool > 0 do
    picked[#picked + 1] = table.remove(pool, math.random(#pool))
  end
  return picked
end

local function pick(set, except) return sample(set, 1, except)[1] end

local function send(out, to, msg) out[#out + 1] = { to = to, msg = msg } end

local function add_passive(s, peer)
  if peer == s.self or s.active[peer] or s.passive[peer] then return end
  if size(s.passive) >= s.cfg.passive then s.passive[pick(s.passive)] = nil end
  s.passive[peer] = true
end

-- Makes room in the active view by dropping a random peer, which is told so.
local function drop_random_active(s, out)
  local victim = pick(s.active)
  s.active[victim] = nil
  send(out, victim, { type = "disconnect" })
  add_passive(s, victim)
end

local function add_active(s, peer, out)
  if peer == s.self or s.active[peer] then return end
  if size(s.active) >= s.cfg.active then drop_random_active(s, out) end
  s.active[peer], s.passive[peer], s.pending[peer] = true, nil, nil
end

-- Asks a random passive peer to become an active neighbor, one request at a time. With no
-- active peer left the request has high priority and cannot be refused.
local function promote(s, out)
  if size(s.active) >= s.cfg.active or next(s.pending) then return end
  local candidate = pick(s.passive)
  if not candidate then return end
  s.pending[candidate] = s.now
  send(out, candidate, { type = "neighbor", priority = next(s.active) and "low" or "high" })
end

local handlers = {}

-- A new node joined through us: take it in and walk its id through the overlay.
function handlers.join(s, from, _, out)
  add_active(s, from, out)
  for _, peer in ipairs(sorted(s.active)) do
    if peer ~= from then send(out, peer, { type = "forward_join", node = from, ttl = s.cfg.arwl }) end
  end
end

-- A random walk for a joining node: it ends in an active view, and leaves a copy in a passive
-- view on the way.
function handlers.forward_join(s, from, msg, out)
  local node, ttl = msg.node, msg.ttl
  if node == s.self then return end
  local next_hop = pick(s.active, { [from] = true, [node] = true })
  if ttl <= 0 or size(s.active) <= 1 or not next_hop then
    if not s.active[node] then
      add_active(s, node, out)
      send(out, node, { type = "connect" })
    end
    return
  end
  if ttl == s.cfg.prwl then add_passive(s, node) end
  send(out, next_hop, { type = "forward_join", node = node, ttl = ttl - 1 })
end

-- The end of a join walk added us: add it back, so that views stay symmetric.
function handlers.connect(s, from, _, out) add_active(s, from, out) end

function handlers.neighbor(s, from, msg, out)
  local accept = msg.priority == "high" or size(s.active) < s.cfg.active
  if accept then add_active(s, from, out) end
  send(out, from, { type = "neighbor_reply", accepted = accept })
end

function handlers.neighbor_reply(s, from, msg, out)
  s.pending[from] = nil
  if msg.accepted then add_active(s, from, out) else promote(s, out) end
end

-- A peer dropped us: keep it as a backup, unless it is leaving the cluster.
function handlers.disconnect(s, from, msg)
  s.active[from], s.pending[from] = nil, nil
  if msg.leaving then s.passive[from] = nil else add_passive(s, from) end
end

local function integrate(s, nodes)
  for _, peer in ipairs(nodes or {}) do add_passive(s, peer) end
end

-- A shuffle walks a few steps, then the node where it ends trades passive entries with
-- its origin.
function handlers.shuffle(s, from, msg, out)
  local next_hop = pick(s.active, { [from] = true, [msg.origin] = true })
  if msg.ttl > 1 and next_hop then
    send(out, next_hop, { type = "shuffle", origin = msg.origin, nodes = msg.nodes, ttl = msg.ttl - 1 })
    return
  end
  if msg.origin ~= s.self then
    send(out, msg.origin, { type = "shuffle_reply", nodes = sample(s.passive, #msg.nodes) })
  end
  integrate(s, msg.nodes)
end

function handlers.shuffle_reply(s, _, msg) integrate(s, msg.nodes) end

local function members(s)
  local list = sorted(s.active)
  list[#list + 1] = s.self
  return list
end

return {
  name = "hyparview",
  version = 1,
  tick = 1000,

  init = function(ctx)
    local cfg = {}
    for key, value in pairs(defaults) do cfg[key] = ctx.config[key] or value end
    return { self = ctx.self, cfg = cfg, active = {}, passive = {}, pending = {}, now = ctx.now }
  end,

  join = function(s, seed)
    local out = {}
    s.left, s.seed = false, seed
    add_active(s, seed, out)
    send(out, seed, { type = "join" })
    return s, members(s), out
  end,

  leave = function(s, peer)
    local out = {}
    if peer == s.self then
      for _, p in ipairs(sorted(s.active)) do send(out, p, { type = "disconnect", leaving = true }) end
      s.active, s.passive, s.pending, s.left = {}, {}, {}, true
    end
    return s, members(s), out
  end,

  on_message = function(s, from, msg)
    local handle = handlers[msg.type]
    if s.left or not handle then return s end  -- gone, or an unknown message: ignore it
    local out = {}
    handle(s, from, msg, out)
    return s, members(s), out
  end,

  on_tick = function(s, now)
    s.now = now
    if s.left then return s end
    local out = {}
    for peer, asked in pairs(s.pending) do     -- an unanswered neighbor request: try another
      if now - asked > s.cfg.neighbor_timeout then s.pending[peer], s.passive[peer] = nil, nil end
    end
    promote(s, out)
    if not next(s.active) and not next(s.pending) and not next(s.passive) and s.seed then
      add_active(s, s.seed, out)                -- alone (the join failed): ask the seed again
      send(out, s.seed, { type = "join" })
    end
    local target = pick(s.active)
    if target then
      local nodes = { s.self }
      for _, p in ipairs(sample(s.active, s.cfg.ka, { [target] = true })) do nodes[#nodes + 1] = p end
      for _, p in ipairs(sample(s.passive, s.cfg.kp)) do nodes[#nodes + 1] = p end
      send(out, target, { type = "shuffle", origin = s.self, nodes = nodes, ttl = s.cfg.arwl })
    end
    return s, members(s), out
  end,

  -- A peer is unreachable: drop it from both views and promote a passive peer.
  on_down = function(s, peer)
    local out = {}
    s.active[peer], s.passive[peer], s.pending[peer] = nil, nil, nil
    promote(s, out)
    return s, members(s), out
  end,
}
