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
        var outgoing: [(capability: String, host: any ProcessHost, table: ShardTable, lost: [Int], dropped: [PeerID])] = []
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
            let handedProcesses = book.withLockedValue { $0.heardFrom[capability] != nil }
            let newcomer = !old.owners.contains { $0 != selfID } && (host.isEmpty || handedProcesses)
            let adopted = book.withLockedValue { book in Set(book.adopted.filter { $0.capability == capability }.map(\.shard)) }
            let (lost, gained) = changes(of: capability, from: old, to: new, newcomer: newcomer, adopted: adopted, up: up)
            let otherHolders = new.holders.subtracting([selfID])
            rerouted.insert(capability)
            let released = book.withLockedValue { book in
                for shard in lost { book.departing[ShardKey(capability: capability, shard: shard)] = [] }
                for (key, previousOwner) in gained where !book.adopted.contains(key) && book.awaited[key] == nil {
                    book.awaited[key] = AwaitedShard(from: previousOwner, since: now)
                    awaited.append(key)
                }
                return book.holdersChanged(capability, others: otherHolders, newcomer: newcomer)
            }
            redeliver(released, capability: capability)
            if !otherHolders.isEmpty { outgoing.append((capability, host, new, lost, Array(old.holders.subtracting(new.holders)))) }
        }
        _ = swapTables(newTables)
        // Adopted shards stop being served here only now that the new tables route: a call
        // that found its shard no longer adopted while the old table still routed would be
        // forwarded by it to the shard's previous owner, which serves a call forwarded that
        // often on a fresh process, and the call's effect would be lost with it.
        book.withLockedValue { $0.adopted = $0.adopted.filter { !rerouted.contains($0.capability) } }
        for capability in newTables.keys { redeliverAwaitingNewTable(capability, force: false) }
        if !awaited.isEmpty {
            Task { [self] in
                try? await Task.sleep(for: Self.handoffTimeout)
                let released = book.withLockedValue { $0.giveUp(awaited, since: now) }
                if !released.isEmpty {
                    logger.warning("no handoff arrived in time; serving held calls with fresh processes",
                                   metadata: ["held": "\(released.count)"])
                }
                for (capability, messages) in Dictionary(grouping: released, by: \.capability) {
                    redeliver(messages.map(\.message), capability: capability)
                }
            }
        }
        // In the order of the tables (rebalances run one at a time, on the node's actor): a
        // later rebalance's handoff to a node must not reach it first, or a newcomer that hears
        // from this node takes it for this node's last word.
        let moves = outgoing
        let previous = lastHandoff.withLockedValue { $0 }
        let task = Task { [self] in
            await previous?.value
            for move in moves {
                await handOff(move.capability, from: move.host, table: move.table, lost: move.lost, dropped: move.dropped)
            }
        }
        lastHandoff.withLockedValue { $0 = task }
        return task
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

    /// Sends every other holder in `table` one handoff message: the `lost` shards it now owns
    /// with their processes, possibly none (a newcomer waits to hear from every holder), and
    /// the holders `dropped` since this node's previous table. A lost shard whose own handoff
    /// this node still awaits is not named: its processes may still be on their way from its
    /// previous owner, and the new owner, told this node had them all, would start them afresh.
    /// The new owner waits for them instead (they reach it from the previous owner, or passed
    /// on from here), or for `handoffTimeout`.
    private func handOff(_ capability: String, from host: any ProcessHost, table: ShardTable, lost: [Int], dropped: [PeerID]) async {
        let count = table.shardCount
        let lostSet = Set(lost)
        await deliveriesDrained()
        let stillAwaited = book.withLockedValue { book in
            lostSet.filter { book.awaited[ShardKey(capability: capability, shard: $0)] != nil }
        }
        let moved = await host.handOff { lostSet.contains(StableHash.shard($0, count: count)) }
        var processesByOwner: [PeerID: [(id: String, state: Value?)]] = [:]
        for process in moved {
            processesByOwner[table.owner(of: process.id), default: []].append(process)
        }
        var shardsByOwner: [PeerID: [Int]] = [:]
        for holder in table.holders where holder != selfID { shardsByOwner[holder] = [] }
        for shard in lost { shardsByOwner[table.owner(ofShard: shard), default: []].append(shard) }
        for (owner, shards) in shardsByOwner {
            let message = HandoffMessage(
                capability: capability, shards: shards.filter { !stillAwaited.contains($0) }, processes: processesByOwner[owner] ?? [],
                holders: Array(table.holders), dropped: dropped)
            do {
                _ = try await transport.request(message.value, to: owner, channel: .processes, timeout: .seconds(5))
            } catch {
                logger.warning("handoff failed; those processes restart on their new owner",
                             metadata: ["capability": "\(capability)", "to": "\(owner)", "error": "\(error)"])
            }
            let keys = shards.map { ShardKey(capability: capability, shard: $0) }
            redeliver(book.withLockedValue { $0.departed(keys) }, capability: capability)
        }
    }

    /// How long a leaving node waits, at most, for its peers to stop routing calls to it (after
    /// the 300 ms it always stays, forwarding calls).
    static var drainLimit: Duration { .seconds(3) }

    /// Returns, on a node that has handed its processes off and is leaving, once no peer has a
    /// connection left on which it could send this node calls (each peer closes its
    /// connections when it sees this node leave, after the replies to its calls came back)
    /// and every call this node forwarded has its reply; or after `drainLimit`, with a warning.
    /// Peers in `leavingToo` are not waited for: they keep their connections while they leave,
    /// and route nothing here.
    func drain(leavingToo: Set<PeerID>) async {
        let callers = { [transport] in transport.inboundPeers(on: .processes).subtracting(leavingToo) }
        let drained = await poll(every: .milliseconds(10), for: Self.drainLimit) {
            callers().isEmpty && forwardsInFlight.load(ordering: .relaxed) == 0
        }
        guard !drained else { return }
        logger.warning("leaving while peers can still send calls here; calls on their way may fail",
                       metadata: ["peers": "\(callers().sorted())"])
    }

    /// Returns once no message is between the hold check and its host, or after a second.
    private func deliveriesDrained() async {
        let drained = await poll(every: .milliseconds(1), for: .seconds(1)) { book.withLockedValue { $0.deliveries == 0 } }
        if !drained { logger.warning("calls kept arriving while handing off; proceeding") }
    }

    /// Receives `handoff` once this node's table no longer has the holders the sender's table
    /// dropped (their departure is on its way here too: nodes that leave, or leave together),
    /// or after `handoffTimeout`; then calls `done`. Received earlier, its processes would be
    /// passed on to those holders. The sender holds the calls for its shards until `done`.
    func receiveWhenCaughtUp(_ handoff: HandoffMessage, from sender: PeerID, then done: @escaping @Sendable () -> Void) {
        let dropped = Set(handoff.dropped)
        let caughtUp = { [self] in table(for: handoff.capability).map { $0.holders.isDisjoint(with: dropped) } ?? true }
        guard !dropped.isEmpty, !isLeaving.load(ordering: .relaxed), !caughtUp() else {
            receive(handoff, from: sender)
            return done()
        }
        Task { [self] in
            _ = await poll(every: .milliseconds(5), for: Self.handoffTimeout, until: caughtUp)
            receive(handoff, from: sender)
            done()
        }
    }

    /// Installs processes handed to this node and serves the calls held for their shards.
    ///
    /// The shards are adopted (served here whatever this node's table says, until it changes)
    /// only when the sender's table knew every holder this node's does, the sender aside: a
    /// sender that knows fewer (a newcomer that has met some of the cluster) names owners
    /// that this node's table rightly places elsewhere. Its processes that this node's table
    /// places on another node are passed on there, before the held calls are served, so that
    /// the calls find them; a passed-on handoff is installed as it is, and only once. A node
    /// that is leaving installs nothing: it passes every process on to its owner.
    func receive(_ handoff: HandoffMessage, from sender: PeerID) {
        let table = table(for: handoff.capability)
        let known = table?.holders ?? []
        let adopt = !isLeaving.load(ordering: .relaxed) && (handoff.passedOn || known.isSubset(of: Set(handoff.holders).union([sender])))
        var elsewhere: [PeerID: [(id: String, state: Value?)]] = [:]
        if let host = host(for: handoff.capability) {
            for process in handoff.processes {
                if !adopt, let owner = table?.owner(of: process.id), owner != selfID {
                    elsewhere[owner, default: []].append(process)
                } else {
                    host.resume(process.id, from: process.state) { [self] in
                        metrics.handoffReplacedLive()
                        logger.warning(
                            "a handed-over process replaced a live one with its id: what calls did to the live one is lost",
                            metadata: ["capability": "\(handoff.capability)", "id": "\(process.id)", "from": "\(sender)"])
                    }
                }
            }
        }
        let keys = handoff.shards.map { ShardKey(capability: handoff.capability, shard: $0) }
        // Adopted only if the table it was decided by still routes: a rebalance in between
        // decided what it hands off without these shards, so they follow the new table.
        let released: [HeldMessage] = handoff.passedOn ? [] : book.withLockedValue { book in
            let current = self.table(for: handoff.capability)
            return book.arrived(
                keys, of: handoff.capability, from: sender, holders: handoff.holders, selfID: selfID,
                adopt: adopt && current == table, tableHolders: (current?.holders ?? []).subtracting([selfID]))
        }
        guard !elsewhere.isEmpty, let table else { return redeliver(released, capability: handoff.capability) }
        Task { [self] in
            for (owner, processes) in elsewhere {
                let message = HandoffMessage(
                    capability: handoff.capability, shards: [], processes: processes, holders: Array(table.holders), passedOn: true)
                do {
                    _ = try await transport.request(message.value, to: owner, channel: .processes, timeout: .seconds(5))
                } catch {
                    logger.warning("passing on handed-off processes failed; they restart on their owner",
                                 metadata: ["capability": "\(handoff.capability)", "to": "\(owner)", "error": "\(error)"])
                }
            }
            redeliver(released, capability: handoff.capability)
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
    private func redeliver(_ messages: [HeldMessage], capability: String) {
        for message in messages { deliver(message, capability: capability, hops: 0) }
    }
}
