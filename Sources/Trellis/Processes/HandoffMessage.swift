import TrellisWire

/// The message that hands a node's processes of some shards to their new owner, sent as a
/// request on the `processes` channel, on the same connection as the calls the old owner
/// forwards after it, so the new owner always installs the processes first.
///
/// On the wire it is a map `{handoff = capability, shards = {...}, procs = {{id, state}, ...},
/// holders = {...}}` with optional fields `relinquished = {...}`, `dropped = {...}`,
/// `pending = {[node] = {shards}}`, `follow_up = true`, `passed_on = true` and `origin = node`.
struct HandoffMessage: Sendable {
    let capability: String
    /// The shards whose processes this message carries (all of them: a shard with no process
    /// here is named with none).
    let shards: [Int]
    let processes: [(id: String, state: Value?)]
    /// Shards the sender lets go of without vouching that it had all their processes: it
    /// was a newcomer, which owned every shard while alone, or awaited them from any holder.
    /// Their processes, if any came, are in `processes`.
    let relinquished: [Int]
    /// Every node the sender's table names.
    let holders: [PeerID]
    /// The holders of the sender's previous table that its new one no longer has (the sender
    /// itself when it is leaving): the receiver waits until its own table has let them go too.
    let dropped: [PeerID]
    /// Shards of the receiver whose processes this message does not carry, with the node they
    /// will come from: the sender itself (they are still on their way to it, and a later
    /// message names them) or a holder that is leaving (they come from it, directly or passed
    /// on by another node). The receiver keeps awaiting them.
    let pending: [Int: PeerID]
    /// Whether this is the second message of a handoff (see `ProcessRouter.handOff`), for
    /// shards the first left pending: it does not count as the sender's handoff for its
    /// current table, which may still be on its way.
    let isFollowUp: Bool
    /// Whether a node that was handed these processes passes them on to the owner its own
    /// table names: install them, nothing else (see `ProcessRouter.receive`).
    let passedOn: Bool
    /// For processes passed on, the node that first handed them over.
    let origin: PeerID?

    /// The shards `sender` speaks for in this message: those it hands over or relinquishes,
    /// and those it marks pending from itself. (One it marks pending from another node is one
    /// it says comes from there.)
    func shardsSpokenFor(by sender: PeerID) -> Set<Int> {
        Set(shards).union(relinquished).union(pending.filter { $0.value == sender }.keys)
    }

    var value: Value {
        var fields: [String: Value] = [
            "holders": .array(holders.map { .string($0.description) }),
            "handoff": .string(capability),
            "shards": .array(shards.map { .int(Int64($0)) }),
            "procs": .array(processes.map { .array([.string($0.id), $0.state ?? .nil]) }),
        ]
        if !relinquished.isEmpty { fields["relinquished"] = .array(relinquished.map { .int(Int64($0)) }) }
        if passedOn { fields["passed_on"] = true }
        if isFollowUp { fields["follow_up"] = true }
        if let origin { fields["origin"] = .string(origin.description) }
        if !dropped.isEmpty { fields["dropped"] = .array(dropped.map { .string($0.description) }) }
        if !pending.isEmpty {
            let byNode = Dictionary(grouping: pending.keys, by: { pending[$0]! })
            fields["pending"] = .map(Dictionary(uniqueKeysWithValues: byNode.map { node, shards in
                (node.description, Value.array(shards.sorted().map { .int(Int64($0)) }))
            }))
        }
        return .map(fields)
    }

    init(
        capability: String, shards: [Int], processes: [(id: String, state: Value?)], relinquished: [Int] = [],
        holders: [PeerID], dropped: [PeerID] = [], pending: [Int: PeerID] = [:], isFollowUp: Bool = false, passedOn: Bool = false,
        origin: PeerID? = nil
    ) {
        self.isFollowUp = isFollowUp
        self.capability = capability
        self.shards = shards
        self.processes = processes
        self.relinquished = relinquished
        self.holders = holders
        self.dropped = dropped
        self.pending = pending
        self.passedOn = passedOn
        self.origin = origin
    }

    init?(_ value: Value) {
        guard case .string(let capability)? = value["handoff"], case .array(let shards)? = value["shards"],
              case .array(let processes)? = value["procs"], case .array(let holders)? = value["holders"]
        else { return nil }
        self.capability = capability
        self.holders = Self.peers(holders)
        if case .array(let dropped)? = value["dropped"] { self.dropped = Self.peers(dropped) } else { self.dropped = [] }
        var pending: [Int: PeerID] = [:]
        if case .map(let byNode)? = value["pending"] {
            for entry in byNode {
                guard let node = entry.key.stringValue, let peer = try? PeerID(parsing: node),
                      case .array(let shards) = entry.value
                else { continue }
                for shard in Self.shards(shards) { pending[shard] = peer }
            }
        }
        self.pending = pending
        self.passedOn = value["passed_on"] == true
        self.isFollowUp = value["follow_up"] == true
        self.origin = value["origin"]?.stringValue.flatMap { try? PeerID(parsing: $0) }
        self.shards = Self.shards(shards)
        if case .array(let relinquished)? = value["relinquished"] {
            self.relinquished = Self.shards(relinquished)
        } else {
            self.relinquished = []
        }
        self.processes = processes.compactMap { entry in
            guard case .array(let parts) = entry, parts.count == 2, case .string(let id) = parts[0] else { return nil }
            return (id, parts[1] == .nil ? nil : parts[1])
        }
    }

    private static func peers(_ values: [Value]) -> [PeerID] {
        values.compactMap { $0.stringValue.flatMap { try? PeerID(parsing: $0) } }
    }

    private static func shards(_ values: [Value]) -> [Int] {
        values.compactMap { if case .int(let shard) = $0 { Int(shard) } else { nil } }
    }
}
