import TrellisPlacement
import TrellisTransport
import TrellisWire

/// Receiving processes handed to this node.
extension ProcessRouter {
    /// Receives `handoff` once this node's table no longer has the holders the sender's table
    /// dropped (their departure is on its way here too: nodes that leave, or leave together),
    /// or after `handoffTimeout`; then calls `done`. Received earlier, its processes would be
    /// passed on to those holders. The sender holds the calls for its shards until `done`.
    func receiveWhenCaughtUp(_ handoff: HandoffMessage, from sender: PeerID, then done: @escaping @Sendable () -> Void) {
        let dropped = Set(handoff.dropped)
        let caughtUp = { [self] in table(for: handoff.capability).map { $0.holders.isDisjoint(with: dropped) } ?? true }
        guard !dropped.isEmpty, !isLeaving.load(ordering: .relaxed), !caughtUp() else {
            return receive(handoff, from: sender, then: done)
        }
        Task { [self] in
            _ = await poll(every: .milliseconds(5), for: Self.handoffTimeout, until: caughtUp)
            receive(handoff, from: sender, then: done)
        }
    }

    /// Installs processes handed to this node and serves the calls held for their shards.
    ///
    /// The shards are adopted (served here whatever this node's table says, until it changes)
    /// only when the sender's table knew every holder this node's does, the sender aside: a
    /// sender that knows fewer (a newcomer that has met some of the cluster) names owners
    /// that this node's table rightly places elsewhere. Its processes that this node's table
    /// places on another node are passed on there, before the held calls are served, so that
    /// the calls find them; so are the shards a leaving sender named, so that their owner
    /// stops waiting for them. A passed-on handoff is installed as it is, and only once. A node
    /// that is leaving installs nothing: it passes every process on to its owner.
    ///
    /// Calls `done` once every process is installed, here or where it was passed on: the
    /// sender then forwards the calls it held, and a leaving sender may stop.
    func receive(_ handoff: HandoffMessage, from sender: PeerID, then done: @escaping @Sendable () -> Void = {}) {
        let capability = handoff.capability
        let table = table(for: capability)
        let known = table?.holders ?? []
        let adopt = !isLeaving.load(ordering: .relaxed) && (handoff.passedOn || known.isSubset(of: Set(handoff.holders).union([sender])))
        var elsewhere: [PeerID: PassedOn] = [:]
        if !handoff.processes.isEmpty { book.withLockedValue { $0.beingHanded(capability) } }
        if let host = host(for: capability) {
            for process in handoff.processes {
                if !adopt, let owner = table?.owner(of: process.id), owner != selfID {
                    elsewhere[owner, default: PassedOn()].processes.append(process)
                } else {
                    host.resume(process.id, from: process.state) { [self] in
                        metrics.handoffReplacedLive()
                        logger.warning(
                            "a handed-over process replaced a live one with its id: what calls did to the live one is lost",
                            metadata: ["capability": "\(capability)", "id": "\(process.id)", "from": "\(sender)"])
                    }
                }
            }
        }
        if !adopt, handoff.passedOn || handoff.dropped.contains(sender), let table {
            for shard in handoff.shards where table.owner(ofShard: shard) != selfID {
                elsewhere[table.owner(ofShard: shard), default: PassedOn()].shards.append(shard)
            }
        }
        guard !elsewhere.isEmpty, let table else {
            record(handoff, from: sender, table: table, adopt: adopt)
            return done()
        }
        // The shards stay awaited here until what goes on has arrived there: this node's own
        // handoffs of them, which wait for that, must not overtake it.
        Task { [self] in
            for (owner, part) in elsewhere {
                await passOn(part, of: capability, from: handoff.origin ?? sender, to: owner, holders: Array(table.holders))
            }
            record(handoff, from: sender, table: table, adopt: adopt)
            done()
        }
    }

    /// Records in the book that `handoff` arrived (by `table`, adopting its shards if `adopt`),
    /// and serves the calls that were held for it.
    private func record(_ handoff: HandoffMessage, from sender: PeerID, table: ShardTable?, adopt: Bool) {
        let capability = handoff.capability
        let keys = handoff.shards.map { ShardKey(capability: capability, shard: $0) }
        let pending = Dictionary(uniqueKeysWithValues: handoff.pending.map { shard, node in
            (ShardKey(capability: capability, shard: shard), node)
        })
        let now = ContinuousClock.now
        let (released, expected) = book.withLockedValue { book -> ([HeldMessage], [ShardKey]) in
            let expected = book.expect(pending, since: now, forgettingBefore: now - Self.handoffTimeout)
            if handoff.passedOn { return (book.passedOn(keys, from: handoff.origin ?? sender), expected) }
            let relinquished = book.relinquished(
                handoff.relinquished.map { ShardKey(capability: capability, shard: $0) }, by: sender)
            // Adopted only if the table it was decided by still routes: a rebalance in between
            // decided what it hands off without these shards, so they follow the new table.
            let current = self.table(for: capability)
            var released = book.arrived(
                keys, of: capability, from: sender, holders: handoff.holders, selfID: selfID,
                adopt: adopt && current == table, heard: !handoff.isFollowUp,
                tableHolders: (current?.holders ?? []).subtracting([selfID]))
            if handoff.dropped.contains(sender), !handoff.isFollowUp, current?.holders == Set(handoff.holders) {
                released += book.disclaimed(by: sender, of: capability, naming: handoff.shardsSpokenFor(by: sender))
            }
            return (relinquished + released, expected)
        }
        if !expected.isEmpty { giveUpLater(expected, since: now) }
        redeliver(released, capability: capability)
    }

    /// Sends `part` of a handoff from `origin` to `owner`, the owner this node's table names.
    private func passOn(_ part: PassedOn, of capability: String, from origin: PeerID, to owner: PeerID, holders: [PeerID]) async {
        let message = HandoffMessage(
            capability: capability, shards: part.shards, processes: part.processes, holders: holders, passedOn: true, origin: origin)
        await request(message, to: owner, failure: "passing on handed-off processes failed; they restart on their owner")
    }
}

/// The part of a handoff a node passes on to one owner: processes, and shards whose owner
/// awaits word of them.
struct PassedOn {
    var shards: [Int] = []
    var processes: [(id: String, state: Value?)] = []
}
