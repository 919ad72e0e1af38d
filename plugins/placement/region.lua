-- region.lua: keep each capability's shards in one region, on nodes tagged with it.
--
-- A node announces its region as a tag: `trellis node --tag region=eu`, or `tags` and
-- `tags_by_node` in a topology file. Edit the two settings below: the region each
-- capability prefers, and the region for the capabilities not listed. Shards go to the nodes
-- of the preferred region by rendezvous (see rendezvous.lua), so a node joining or leaving
-- that region moves only its share. When no node of the preferred region holds the
-- capability, the shards fall back to all its nodes, and come back as soon as one does.

local DEFAULT_REGION = "eu"
local REGION_OF = {
  -- chat = "us",
}

local function bid(node, shard)
  return trellis.hash(node.id .. "/" .. shard)
end

return {
  name = "region",
  version = 1,

  -- assign builds the whole table in one call: the nodes of the region are picked once,
  -- rather than once per shard as an owner function would.
  assign = function(capability, nodes, shard_count)
    local region = REGION_OF[capability] or DEFAULT_REGION
    local candidates = {}
    for _, node in ipairs(nodes) do
      if node.tags.region == region then candidates[#candidates + 1] = node end
    end
    if #candidates == 0 then candidates = nodes end

    local owners = {}
    for shard = 0, shard_count - 1 do
      local best, best_bid = candidates[1], bid(candidates[1], shard)
      for i = 2, #candidates do
        local b = bid(candidates[i], shard)
        if math.ult(best_bid, b) then best, best_bid = candidates[i], b end
      end
      owners[shard + 1] = best.id
    end
    return owners
  end,
}
