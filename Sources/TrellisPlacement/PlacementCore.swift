import TrellisLua
import TrellisWire

/// The shard table of every capability the members serve, computed by one policy and cached.
///
/// A pure state machine like the membership core: give it the members whenever membership or
/// a member's capabilities or tags change, and it asks the policy again only for the
/// capabilities whose nodes changed (a node gained or lost the capability, or one of its
/// holders changed tags or capabilities, which the policy sees). Routing reads the cache.
///
/// When the policy fails for a capability, the previous table of that capability stays in
/// force and the failure is returned for the caller to log; the policy is asked again when
/// that capability's nodes change again. Not `Sendable` when its policy is a script: it
/// belongs to the node's actor.
public struct PlacementCore {
    /// Shards per capability.
    public let shardCount: Int
    /// The policy that computes the tables.
    public let policy: any PlacementPolicy
    /// How many times the policy was asked for a table, failures included.
    public private(set) var computations = 0

    private var placements: [String: Placement] = [:]

    /// One capability: the nodes the policy was last given, and the last table it returned.
    private struct Placement {
        var nodes: [PlacementNode]
        var table: ShardTable?
    }

    /// A core placing `shardCount` shards per capability with `policy`; by default the
    /// built-in rendezvous placement, which needs no script.
    public init(policy: any PlacementPolicy = RendezvousPlacement(), shardCount: Int = 4096) {
        precondition(shardCount > 0, "the shard count must be positive")
        self.policy = policy
        self.shardCount = shardCount
    }

    /// The capabilities at least one member serves, sorted.
    public var capabilities: [String] { placements.keys.sorted() }

    /// Brings the tables up to date with `members` (every member that can own shards, this node
    /// included when it serves anything). Returns the capabilities whose policy failed; their
    /// previous tables stay in force.
    public mutating func update(members: [PlacementNode]) -> [PlacementFailure] {
        var holders: [String: [PlacementNode]] = [:]
        for node in members {
            for capability in Set(node.capabilities) { holders[capability, default: []].append(node) }
        }
        placements = placements.filter { holders[$0.key] != nil }
        var failures: [PlacementFailure] = []
        for (capability, nodes) in holders.sorted(by: { $0.key < $1.key }) {
            let sorted = nodes.sorted { $0.id < $1.id }
            let previous = placements[capability]
            guard previous?.nodes != sorted else { continue }
            computations += 1
            do {
                let table = try policy.table(capability: capability, nodes: sorted, shardCount: shardCount)
                placements[capability] = Placement(nodes: sorted, table: table)
            } catch {
                placements[capability] = Placement(nodes: sorted, table: previous?.table)
                failures.append(PlacementFailure(capability: capability, error: error, keptPreviousTable: previous?.table != nil))
            }
        }
        return failures
    }

    /// The table of `capability`; `nil` when no member serves it, or its policy has failed for
    /// every node set so far.
    public func table(for capability: String) -> ShardTable? { placements[capability]?.table }

    /// The node that owns the process `id` of `capability`.
    public func owner(of id: String, capability: String) throws(PlacementError) -> PeerID {
        guard let placement = placements[capability] else { throw .noNode(capability: capability) }
        guard let table = placement.table else { throw .noTable(capability: capability) }
        return table.owner(of: id)
    }
}

/// Why a process of a capability has no owner.
public enum PlacementError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No member serves the capability.
    case noNode(capability: String)
    /// Members serve it, but the placement policy failed every time it was asked.
    case noTable(capability: String)

    public var description: String {
        switch self {
        case .noNode(let capability): "no node has the capability '\(capability)'"
        case .noTable(let capability): "the placement policy has no table for the capability '\(capability)' (it failed; see the log)"
        }
    }
}

/// A placement policy that failed for one capability.
public struct PlacementFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The capability whose table could not be computed.
    public var capability: String
    /// What the policy reported.
    public var error: ScriptError
    /// Whether an earlier table of the capability stays in force.
    public var keptPreviousTable: Bool

    public init(capability: String, error: ScriptError, keptPreviousTable: Bool) {
        self.capability = capability
        self.error = error
        self.keptPreviousTable = keptPreviousTable
    }

    /// `placement of 'game': <the script's error>; keeping its previous table`.
    public var description: String {
        "placement of '\(capability)': \(error); " + (keptPreviousTable ? "keeping its previous table" : "it has no table yet")
    }
}
