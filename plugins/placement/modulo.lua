-- modulo.lua: shard i belongs to the (i mod n)-th node, counting the nodes in id order.
--
-- The simplest policy, and the one Mesh uses (shard modulo the node count over the sorted
-- nodes), so both place the same way: shards are spread as evenly as they can be.
-- Its cost is movement: when a node joins or leaves, n changes and almost every shard changes
-- owner (from 3 to 4 nodes, three shards in four move). Prefer rendezvous.lua when shards
-- carry state that is expensive to hand over.

return {
  name = "modulo",
  version = 1,

  -- shard counts from 0, Lua arrays from 1.
  owner = function(shard, capability, nodes)
    return nodes[shard % #nodes + 1].id
  end,
}
