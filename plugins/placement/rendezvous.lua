-- rendezvous.lua: highest random weight (Thaler and Ravishankar, 1998).
--
-- Every node bids for every shard with the hash of "<node id>/<shard>"; the highest bid wins.
-- A bid depends on nothing but the node and the shard, so when a node joins it takes about
-- 1/n of the shards, each from whoever held it, and nothing else moves; when a node leaves,
-- only its own shards move, spread over the others. This is the node's built-in default
-- (RendezvousPlacement in Swift computes the same table), so copy it as a starting point.

-- trellis.hash returns a 64-bit integer that Lua sees as signed: compare bids as unsigned,
-- with math.ult, so that the Swift implementation and this script agree on every bid.
local function bid(node, shard)
  return trellis.hash(node.id .. "/" .. shard)
end

return {
  name = "rendezvous",
  version = 1,

  -- nodes are sorted by id; on an exact tie (never seen with 64-bit bids) the first one wins.
  owner = function(shard, capability, nodes)
    local best, best_bid = nodes[1], bid(nodes[1], shard)
    for i = 2, #nodes do
      local b = bid(nodes[i], shard)
      if math.ult(best_bid, b) then best, best_bid = nodes[i], b end
    end
    return best.id
  end,
}
