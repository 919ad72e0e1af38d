import TrellisPlacement
import TrellisTransport
import TrellisWire

/// Moving processes when shard tables change.
extension ProcessRouter {
    /// How long calls for a shard wait for its processes to arrive from the old owner before
    /// they are served here anyway (the processes then start afresh).
    static var handoffTimeout: Duration { .seconds(2) }

    /// Switches routing to `newTables` and moves processes accordingly: shards this node lost
    /// are handed to their new owners with their processes' states, and shards it gained from
    /// a node that is still up (a holder in the new table, or one of the members `up`: a
    /// node that is leaving holds no shard but still has processes) are awaited (their calls
    /// held) until that node's handoff arrives. Returns the task sending this node's handoffs,
    /// which starts once the previous rebalance's have gone.
    @discardableResult
    func rebalance(to newTables: [String: ShardTable], up: Set<PeerID>) -> Task<Void, Never> {
        let oldTables = currentTables
        var outgoing: [ShardMove] = []
        var awaited: [ShardKey] = []
        var rerouted: Set<String> = []
        let now = ContinuousClock.now
        for (capability, host) in allHosts {
            guard let new = newTables[capability] else { continue }
            let old = oldTables[capability] ?? ShardTable(owners: Array(repeating: selfID, count: new.shardCount))
            guard old != new else { continue }
            if old.shardCount != new.shardCount {
                logger.error("shard count changed; processes restart on their new owners", metadata: ["capability": "\(capability)"])
                continue
            }
            // Alone until now: a newcomer if it has no processes, or if holders it has not met
            // yet already handed it some (it is joining them, and the others' may be on the way).
            // The host is looked at first: a handoff is noted in the book before its processes
            // land, so processes seen here were noted already. (In the other order, a handoff
            // landing between the two looks made a newcomer with processes look like a node
            // with its own, which awaits nothing, and it served calls on fresh processes.)
            let hadNoProcesses = host.isEmpty
            let handedProcesses = book.withLockedValue { $0.heardFrom[capability] != nil }
            let newcomer = !old.owners.contains { $0 != selfID } && (hadNoProcesses || handedProcesses)
            let adopted = book.withLockedValue { book in Set(book.adopted.filter { $0.capability == capability }.map(\.shard)) }
            let (lost, gained) = changes(of: capability, from: old, to: new, newcomer: newcomer, adopted: adopted, up: up)
            let otherHolders = new.holders.subtracting([selfID])
            rerouted.insert(capability)
            let released = book.withLockedValue { book in
                for shard in lost { book.departing[ShardKey(capability: capability, shard: shard)] = [] }
                for (key, previousOwner) in gained where !book.adopted.contains(key) {
                    if book.startAwaiting(key, from: previousOwner, since: now, hintsSince: now - Self.handoffTimeout) {
                        awaited.append(key)
                    }
                }
                return book.holdersChanged(capability, others: otherHolders, newcomer: newcomer)
            }
            redeliver(released, capability: capability)
            if !otherHolders.isEmpty {
                let dropped = old.holders.subtracting(new.holders)
                outgoing.append(ShardMove(
                    capability: capability, host: host, table: new, previous: old, newcomer: newcomer, lost: lost,
                    dropped: Array(dropped), leaving: dropped.intersection(up).subtracting([selfID])))
            }
        }
        _ = swapTables(newTables)
        // Adopted shards stop being served here only now that the new tables route: a call
        // that found its shard no longer adopted while the old table still routed would be
        // forwarded by it to the shard's previous owner, which serves a call forwarded that
        // often on a fresh process, and the call's effect would be lost with it.
        book.withLockedValue { $0.adopted = $0.adopted.filter { !rerouted.contains($0.capability) } }
        for capability in newTables.keys { redeliverAwaitingNewTable(capability, force: false) }
        if !awaited.isEmpty { giveUpLater(awaited, since: now) }
        // In the order of the tables (rebalances run one at a time, on the node's actor): a
        // later rebalance's handoff to a node must not reach it first, or a newcomer that hears
        // from this node takes it for this node's last word.
        let moves = outgoing
        return enqueueHandoff { [self] in
            for move in moves { await handOff(move) }
        }
    }

    /// The shards this node loses between two tables, and the shards it gains that a node
    /// that is still up (a holder of `new`, or in `up`) may hold processes for, each with
    /// that node (`nil` for a newcomer's: any holder may have them). A shard this
    /// node `adopted` (its processes were handed here before its own table named it the owner)
    /// counts as its own: when the new table places it elsewhere, its processes move on. A
    /// newcomer (a node that knew no other holder and has no processes yet, or only processes
    /// other holders handed it) awaits every shard it owns now, until each other holder has
    /// sent its handoff (empty or not). A node that was alone with its own processes awaits
    /// nothing: they are all here.
    private func changes(
        of capability: String, from old: ShardTable, to new: ShardTable, newcomer: Bool, adopted: Set<Int>, up: Set<PeerID>
    ) -> (lost: [Int], gained: [(key: ShardKey, from: PeerID?)]) {
        let stillUp = new.holders.union(up)
        let knewOthers = old.owners.contains { $0 != selfID }
        var lost: [Int] = []
        var gained: [(key: ShardKey, from: PeerID?)] = []
        for shard in 0..<new.shardCount {
            let (before, after) = (old.owner(ofShard: shard), new.owner(ofShard: shard))
            if before == selfID || adopted.contains(shard), after != selfID { lost.append(shard) }
            guard after == selfID else { continue }
            let key = ShardKey(capability: capability, shard: shard)
            if knewOthers, before != selfID, stillUp.contains(before) {
                gained.append((key, before))
            } else if !knewOthers, newcomer, new.holderCount > 1 {
                gained.append((key, nil))
            }
        }
        return (lost, gained)
    }

    /// Stops waiting for those of `keys` awaited since `start` or earlier once `handoffTimeout`
    /// has passed, and serves the calls held for them (their processes start afresh).
    func giveUpLater(_ keys: [ShardKey], since start: ContinuousClock.Instant) {
        Task { [self] in
            try? await Task.sleep(for: Self.handoffTimeout)
            let released = book.withLockedValue { $0.giveUp(keys, since: start) }
            if !released.isEmpty {
                logger.warning("no handoff arrived in time; serving held calls with fresh processes",
                               metadata: ["held": "\(released.count)"])
            }
            for (capability, messages) in Dictionary(grouping: released, by: \.capability) {
                redeliver(messages.map(\.message), capability: capability)
            }
        }
    }

    /// Schedules the release of the messages held for `capability` until this node's table
    /// changes, for when it has not changed within `handoffTimeout`.
    func releaseAwaitingNewTableLater(_ capability: String) {
        Task { [self] in
            try? await Task.sleep(for: Self.handoffTimeout)
            redeliverAwaitingNewTable(capability, force: true)
        }
    }

    /// Delivers again the messages held until this node's table of `capability` changed; with
    /// `force` (it has not changed in time), as if their senders' tables agreed with this
    /// node's, so that each is forwarded or served.
    private func redeliverAwaitingNewTable(_ capability: String, force: Bool) {
        let held = book.withLockedValue { $0.awaitingNewTable.removeValue(forKey: capability) ?? [] }
        for entry in held {
            let hops = entry.bounced && !force ? 0 : entry.hops
            deliver(entry.message, capability: capability, hops: hops, origin: force ? nil : entry.origin)
        }
    }

    /// Delivers held messages again, in the order they were held.
    func redeliver(_ messages: [HeldMessage], capability: String) {
        for message in messages { deliver(message, capability: capability, hops: 0) }
    }
}
