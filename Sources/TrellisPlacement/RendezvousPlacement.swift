import TrellisLua
import TrellisWire

/// Highest random weight placement, built in: each node bids `StableHash.hash64` of
/// `"<node id>/<shard>"` for each shard and the highest bid (compared unsigned) wins; on an
/// exact tie the first node in id order wins.
///
/// It computes exactly the table of `plugins/placement/rendezvous.lua`, without a Lua VM: the
/// node's placement when no script is configured. A joining node takes about 1/n of the
/// shards and nothing else moves; a leaving node's shards spread over the others.
public struct RendezvousPlacement: PlacementPolicy, Sendable {
    public init() {}

    public var name: String { "rendezvous" }

    public func table(capability: String, nodes: [PlacementNode], shardCount: Int) -> ShardTable {
        precondition(!nodes.isEmpty, "a placement needs at least one node")
        precondition(shardCount > 0, "the shard count must be positive")
        let ids = nodes.map(\.id).sorted()
        // Each bid hashes "<id>/" then the shard's digits: hash each prefix once, go on per shard.
        let prefixes = ids.map { StableHash.Steps().adding("\($0)/".utf8) }
        let owners = (0..<shardCount).map { shard in
            let digits = Array(String(shard).utf8)
            var best = 0
            var bestBid: UInt64 = 0
            for (index, prefix) in prefixes.enumerated() {
                let bid = prefix.adding(digits).value
                if index == 0 || bid > bestBid { (best, bestBid) = (index, bid) }
            }
            return ids[best]
        }
        return ShardTable(owners: owners)
    }
}
