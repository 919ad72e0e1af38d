-- hyparview.lua: HyParView (Leitão, Pereira and Rodrigues, DSN 2007) as a Trellis overlay.
--
-- Each node keeps a small *active view* of peers it is connected to (its members) and a
-- larger *passive view* of peers it knows, as backups. Joins spread by random walks, a
-- periodic shuffle refreshes the passive views, and when an active peer fails, a passive
-- one is promoted. Active views stay symmetric: a node adds a peer only when that peer adds
-- it too, and tells a peer it drops (`disconnect`).
--
-- Additions to the paper (plugins/README.md says why): lost peers are asked again with a
-- backoff (so the sides of a healed partition meet), repeated refusals escalate, full nodes
-- now and then swap a neighbor, and a group of nodes with only each other as neighbors
-- reaches out, so small views never settle apart; a shuffle from a non-neighbor restores symmetry.
-- Messages (msg.type): join, forward_join, connect, neighbor, neighbor_reply, disconnect
-- (leaving = true when the sender leaves the cluster), shuffle, shuffle_reply.
-- config (paper defaults): active = 5, passive = 30, arwl = 6, prwl = 3, ka = 3, kp = 4;
-- neighbor_timeout = 2000 (ms to wait for a neighbor_reply), lost = 10 (failed peers kept,
-- 0 for none), retry_min = 1000 and retry_max = 8000 (ms between tries of a lost peer),
-- escalate = 3 (refusals before a request that cannot be refused), refresh = 0.02 (chance
-- per tick that a full node swaps a neighbor for a passive peer). The shuffle runs every
-- tick. Views are arrays, not sets, so the same seed gives the same run (pairs would not).

local defaults = { active = 5, passive = 30, arwl = 6, prwl = 3, ka = 3, kp = 4, lost = 10,
  neighbor_timeout = 2000, retry_min = 1000, retry_max = 8000, escalate = 3, refresh = 0.02 }
local cfg  -- set by init or migrate, then fixed: out of the state (recorded before each call)
-- Library functions as locals: one step away, where a global takes two lookups.
local random, min, max, mtype, tremove = math.random, math.min, math.max, math.type, table.remove
local ipairs, next, pairs = ipairs, next, pairs

-- Numeric loops, not ipairs, in the helpers every message runs: ipairs costs a C call per step.
local function index_of(list, peer)
  for i = 1, #list do if list[i] == peer then return i end end
end

local function remove(list, peer)
  local i = index_of(list, peer)
  if i then tremove(list, i) end
  return i ~= nil
end

-- Removes peer from the active view; `changed` tells `members` to return the new list.
local function drop_active(s, peer)
  local dropped = remove(s.active, peer)
  if dropped then
    s.changed = true
    if next(s.closed) then s.closed = {} end    -- what we knew of closure no longer holds
  end
  return dropped
end

-- Up to n distinct random entries of list, other than skip1 and skip2 (either may be nil).
local function sample(list, n, skip1, skip2)
  local pool = {}
  for i = 1, #list do
    local peer = list[i]
    if peer ~= skip1 and peer ~= skip2 then pool[#pool + 1] = peer end
  end
  local picked = {}
  for i = 1, min(n, #pool) do   -- a partial Fisher-Yates shuffle of the pool
    local j = random(i, #pool)
    pool[i], pool[j] = pool[j], pool[i]
    picked[i] = pool[i]
  end
  return picked
end

-- One random entry of list other than skip1 and skip2; a random index first, which is
-- almost always good, then a full sample.
local function pick(list, skip1, skip2)
  if #list == 0 then return nil end
  local peer = list[random(#list)]
  if peer ~= skip1 and peer ~= skip2 then return peer end
  return sample(list, 1, skip1, skip2)[1]
end

local function send(out, to, msg) out[#out + 1] = { to = to, msg = msg } end

local function add_passive(s, peer)
  local passive, n = s.passive, #s.passive
  if peer == s.self or index_of(s.active, peer) or index_of(passive, peer) then return end
  if n >= cfg.passive then   -- evict a random entry: the last one takes its place
    local i = random(n)
    passive[i] = passive[n]
    passive[n] = nil
    n = n - 1
  end
  passive[n + 1] = peer
end

-- Makes room in the active view by dropping a random peer, which is told so.
local function drop_random_active(s, out)
  local victim = tremove(s.active, random(#s.active))
  s.changed = true
  if next(s.closed) then s.closed = {} end
  send(out, victim, { type = "disconnect" })
  add_passive(s, victim)
end

local function add_active(s, peer, out)
  if peer == s.self or index_of(s.active, peer) then return end
  if #s.active >= cfg.active then drop_random_active(s, out) end
  s.active[#s.active + 1] = peer
  s.changed = true
  remove(s.passive, peer)
  s.pending[peer] = nil
  for i, entry in ipairs(s.lost) do if entry.peer == peer then tremove(s.lost, i) break end end
end

-- Whether our neighbors' last shuffles named no peer outside our active view (`s.closed`,
-- reset when it loses a peer): we and they are then a whole component (two nodes with only
-- each other, or with active = 3 four full nodes that all list each other).
local function in_closed_group(s)
  for i = 1, #s.active do if not s.closed[s.active[i]] then return false end end
  return #s.active > 0
end

-- When a neighbor's shuffle names all its other neighbors (a sound `degree` of them, after
-- the origin), notes whether they are all in our active view (or us); returns whether it did.
local function note_neighbors(s, from, msg)
  local degree = msg.degree
  if mtype(degree) ~= "integer" or degree < 0 or degree >= #msg.nodes then return false end
  s.closed[from] = true
  for i = 2, degree + 1 do
    local other = msg.nodes[i]
    if other ~= s.self and not index_of(s.active, other) then s.closed[from] = nil end
  end
  return true
end

-- Asks a random passive peer to become a neighbor, one request at a time: when our active
-- view is short, or full but closed (a swap, `neighbor_timeout` apart, doubling up to
-- `retry_max`). With no active peer, after `escalate` refusals in a row, or when closed, it
-- cannot be refused: else small views settle into components that refuse each other forever.
local function promote(s, out)
  if next(s.pending) or #s.passive == 0 then return end
  local closed = in_closed_group(s)
  if #s.active >= cfg.active then
    if not closed then s.reach_wait = nil return end
    if s.now < (s.reach_due or 0) then return end
    s.reach_wait = min((s.reach_wait or cfg.neighbor_timeout / 2) * 2, cfg.retry_max)
    s.reach_due = s.now + s.reach_wait
  end
  local candidate = pick(s.passive)
  local urgent = closed or #s.active == 0 or s.refused >= cfg.escalate
  if urgent then s.refused = 0 end
  s.pending[candidate] = s.now
  send(out, candidate, { type = "neighbor", priority = urgent and "high" or "low" })
end

-- Remembers a peer that failed, or doubles the wait before trying it again (`lost` = 0: never).
local function remember_lost(s, peer)
  if cfg.lost < 1 then return end
  for _, entry in ipairs(s.lost) do
    if entry.peer == peer then
      entry.wait = min(entry.wait * 2, cfg.retry_max)
      entry.due = s.now + entry.wait
      return
    end
  end
  if #s.lost >= cfg.lost then tremove(s.lost, 1) end
  s.lost[#s.lost + 1] = { peer = peer, wait = cfg.retry_min, due = s.now + cfg.retry_min }
end

-- Asks one lost peer whose wait is over to be a neighbor again (high priority: it makes
-- room for us). The entry stays until the peer answers or is promoted.
local function retry_lost(s, out)
  for _, entry in ipairs(s.lost) do
    if entry.due <= s.now and not s.pending[entry.peer] then
      entry.due = s.now + entry.wait
      send(out, entry.peer, { type = "neighbor", priority = "high" })
      return
    end
  end
end

local handlers = {}

-- A new node joined through us: take it in and walk its id through the overlay.
function handlers.join(s, from, _, out)
  add_active(s, from, out)
  for _, peer in ipairs(s.active) do
    if peer ~= from then send(out, peer, { type = "forward_join", node = from, ttl = cfg.arwl }) end
  end
end

-- A random walk for a joining node: it ends in an active view, and leaves a copy in a passive
-- view on the way.
function handlers.forward_join(s, from, msg, out)
  local node, ttl = msg.node, msg.ttl
  if node == s.self then return end
  local next_hop = pick(s.active, from, node)
  if ttl <= 0 or #s.active <= 1 or not next_hop then
    if not index_of(s.active, node) then
      add_active(s, node, out)
      send(out, node, { type = "connect" })
    end
    return
  end
  if ttl == cfg.prwl then add_passive(s, node) end
  send(out, next_hop, { type = "forward_join", node = node, ttl = ttl - 1 })
end

-- The end of a join walk added us: add it back, so that views stay symmetric.
function handlers.connect(s, from, _, out) add_active(s, from, out) end

function handlers.neighbor(s, from, msg, out)
  local accept = msg.priority == "high" or #s.active < cfg.active
  if accept then add_active(s, from, out) end
  send(out, from, { type = "neighbor_reply", accepted = accept })
end

-- A refusal is not retried at once (that would ping-pong between full views): the next
-- tick asks another passive peer.
function handlers.neighbor_reply(s, from, msg, out)
  s.pending[from] = nil
  if msg.accepted then add_active(s, from, out) else s.refused = s.refused + 1 end
end

-- A peer dropped us: keep it as a backup, unless it is leaving the cluster.
function handlers.disconnect(s, from, msg)
  drop_active(s, from)
  s.pending[from] = nil
  if msg.leaving then remove(s.passive, from) else add_passive(s, from) end
end

local function integrate(s, nodes)
  for _, peer in ipairs(nodes or {}) do add_passive(s, peer) end
end

-- A shuffle walks a few steps, then the node where it ends trades passive entries with
-- its origin. Shuffles travel only between active neighbors, so one from a peer we do not
-- count as a neighbor means its view is out of step with ours (a message lost to a failure
-- or a partition): we tell it to drop us, and the views are symmetric again. A neighbor's
-- own shuffle may name all its other neighbors (`degree` of them, after the origin).
function handlers.shuffle(s, from, msg, out)
  if not index_of(s.active, from) then
    send(out, from, { type = "disconnect" })
  elseif msg.origin == from and note_neighbors(s, from, msg) then
    promote(s, out)
  end
  local next_hop = pick(s.active, from, msg.origin)
  if msg.ttl > 1 and next_hop then
    msg.ttl = msg.ttl - 1                  -- the received message walks on as it is
    send(out, next_hop, msg)
    return
  end
  if msg.origin ~= s.self then
    send(out, msg.origin, { type = "shuffle_reply", nodes = sample(s.passive, #msg.nodes) })
  end
  integrate(s, msg.nodes)
end

function handlers.shuffle_reply(s, _, msg) integrate(s, msg.nodes) end

-- The members to return: nil (unchanged) unless the active view changed.
local function members(s)
  if not s.changed then return nil end
  s.changed = false
  local list = { s.self }
  for i, peer in ipairs(s.active) do list[i + 1] = peer end
  return list
end

local function new_state(ctx)
  cfg = {}
  for key, value in pairs(defaults) do cfg[key] = ctx.config[key] or value end
  return { self = ctx.self, now = ctx.now, refused = 0,
           active = {}, passive = {}, pending = {}, lost = {}, closed = {} }
end

-- The peers a previous overlay's state knew: its `members` (a set or a list), `active`, `passive`.
local function known_peers(old, self)
  local seen, peers = { [self] = true }, {}
  if type(old) ~= "table" then return peers end   -- the old script kept no table
  local function add(peer)
    if type(peer) == "string" and not seen[peer] then seen[peer], peers[#peers + 1] = true, peer end
  end
  for key, value in pairs(old.members or {}) do add(value == true and key or value) end
  for _, list in ipairs({ old.active or {}, old.passive or {} }) do
    for _, peer in ipairs(list) do add(peer) end
  end
  table.sort(peers)
  return peers
end

-- A score that two peers agree on, so that their choices of neighbors mostly match.
local function pair_score(a, b)
  if a > b then a, b = b, a end
  return trellis.hash(a .. "|" .. b)
end

return {
  name = "hyparview",
  version = 4,
  tick = 1000,
  init = new_state,

  -- Hot swap from another overlay: the peers it knew fill the views. Those with the best
  -- pair scores become neighbors (two nodes rank each other alike, so most choices are
  -- mutual; the protocol repairs the rest), the others go to the passive view.
  migrate = function(old, old_version, ctx)
    local s = new_state(ctx)
    -- From hyparview itself: keep the views; add the fields earlier versions lacked.
    local own = type(old) == "table" and type(old.active) == "table"
    if own and type(old.passive) == "table" then
      for key, value in pairs(s) do if old[key] == nil then old[key] = value end end
      old.cfg, old.closed, old.now = nil, {}, ctx.now   -- versions before 4 kept cfg in the state
      while #old.active > cfg.active do add_passive(old, tremove(old.active)) end
      while #old.passive > cfg.passive do tremove(old.passive) end
      old.changed = true
      return old, members(old)
    end
    local peers = known_peers(old, ctx.self)
    table.sort(peers, function(a, b) return pair_score(ctx.self, a) < pair_score(ctx.self, b) end)
    for _, peer in ipairs(peers) do
      if #s.active < cfg.active then s.active[#s.active + 1] = peer else add_passive(s, peer) end
    end
    s.changed = true
    return s, members(s)
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
      for _, p in ipairs(s.active) do send(out, p, { type = "disconnect", leaving = true }) end
      s.active, s.passive, s.pending, s.lost, s.closed = {}, {}, {}, {}, {}
      s.left, s.changed = true, true
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
      if now - asked > cfg.neighbor_timeout then
        s.pending[peer] = nil
        remove(s.passive, peer)
      end
    end
    promote(s, out)
    retry_lost(s, out)
    -- Now and then a full node swaps a neighbor for a passive peer: components whose nodes
    -- are all full would otherwise never meet again.
    if #s.active >= cfg.active and not next(s.pending) and random() < cfg.refresh then
      local candidate = pick(s.passive)
      if candidate then
        s.pending[candidate] = now
        send(out, candidate, { type = "neighbor", priority = "high" })
      end
    end
    if #s.active == 0 and not next(s.pending) and #s.passive == 0 and s.seed then
      add_active(s, s.seed, out)                -- alone (the join failed): ask the seed again
      send(out, s.seed, { type = "join" })
    end
    -- Shuffles go to the active peers in turn, not at random: each hears from us every
    -- `active` ticks, so one that dropped us without our knowing says so soon.
    s.turn = (s.turn or 0) % max(#s.active, 1) + 1
    local target = s.active[s.turn]
    if target then
      local nodes = { s.self }
      for _, p in ipairs(sample(s.active, cfg.ka, target)) do nodes[#nodes + 1] = p end
      -- With active <= ka + 1 that sample is all our other neighbors: `degree` says so.
      local degree = cfg.active <= cfg.ka + 1 and #nodes - 1 or nil
      for _, p in ipairs(sample(s.passive, cfg.kp)) do nodes[#nodes + 1] = p end
      send(out, target, { type = "shuffle", origin = s.self, nodes = nodes, ttl = cfg.arwl,
                          degree = degree })   -- nil, so left out, unless set above
    end
    return s, members(s), out
  end,

  -- A peer is unreachable: drop it from both views, remember it if it was a neighbor (or back
  -- off if it was lost already), and promote a passive peer.
  on_down = function(s, peer)
    local out, known_lost = {}, false
    for _, entry in ipairs(s.lost) do known_lost = known_lost or entry.peer == peer end
    if drop_active(s, peer) or known_lost then remember_lost(s, peer) end
    remove(s.passive, peer)
    s.pending[peer] = nil
    promote(s, out)
    return s, members(s), out
  end,
}
