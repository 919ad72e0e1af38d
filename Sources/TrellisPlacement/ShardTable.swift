// `PlacementNode` is defined next to the placement script host (which takes a list of them);
// placement users see it through this module.
@_exported import struct TrellisLua.PlacementNode
import TrellisWire

/// The owner of every shard of one capability: routing a process id costs a hash and an
/// array lookup.
public struct ShardTable: Sendable, Equatable {
    /// The owner of each shard, indexed by shard number.
    public let owners: [PeerID]
    /// The nodes that own at least one shard.
    public let holders: Set<PeerID>
    /// A digest of the set of nodes that own shards: equal for tables over the same nodes.
    public let holderDigest: UInt64

    /// A table from its owners, one per shard; there must be at least one shard.
    public init(owners: [PeerID]) {
        precondition(!owners.isEmpty, "a shard table has at least one shard")
        self.owners = owners
        self.holders = Set(owners)
        self.holderDigest = StableHash.hash64(holders.map(\.description).sorted().joined(separator: "\n").utf8)
    }

    /// How many different nodes own shards.
    public var holderCount: Int { holders.count }

    /// How many shards the table has.
    public var shardCount: Int { owners.count }

    /// The owner of shard `shard`.
    public func owner(ofShard shard: Int) -> PeerID { owners[shard] }

    /// The owner of the process `id`: the owner of `StableHash.shard(id, count: shardCount)`.
    public func owner(of id: String) -> PeerID { owners[StableHash.shard(id, count: owners.count)] }
}

extension ShardTable {
    /// The fraction of shards, from 0 to 1, whose owner differs in `other`: what a change of
    /// placement hands over. Both tables must have the same number of shards.
    public func movedFraction(to other: ShardTable) -> Double {
        precondition(shardCount == other.shardCount, "tables of \(shardCount) and \(other.shardCount) shards")
        let moved = zip(owners, other.owners).count { $0 != $1 }
        return Double(moved) / Double(shardCount)
    }
}
