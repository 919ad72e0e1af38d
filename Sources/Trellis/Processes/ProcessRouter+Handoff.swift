import Logging
import TrellisPlacement
import TrellisTransport
import TrellisWire

/// What one rebalance hands over for one capability: the shards this node lost between two
/// of its tables, to their owners in the new one.
struct ShardMove {
    let capability: String
    let host: any ProcessHost
    /// The table the shards are handed over by.
    let table: ShardTable
    /// The table it replaced.
    let previous: ShardTable
    /// Whether this node was a newcomer in `previous`: alone, owning every shard without
    /// their processes.
    let newcomer: Bool
    let lost: [Int]
    /// The holders of `previous` that `table` no longer has.
    let dropped: [PeerID]
    /// Those of `dropped` that are still up: they are leaving, and their processes are on
    /// their way to the new owners.
    let leaving: Set<PeerID>
}

/// Sending processes to the new owners of the shards this node lost.
extension ProcessRouter {
    /// Sends every other holder in the move's table one handoff message: the lost shards it
    /// now owns with their processes, possibly none (a newcomer waits to hear from every
    /// holder), and the holders dropped since this node's previous table. A newcomer's lost
    /// shards are relinquished, not handed over: it never had their processes.
    ///
    /// A lost shard whose processes are still on their way here is named in a second message,
    /// once they have arrived or `handoffTimeout` has passed, so that they go on with it (its
    /// processes already here go with the first):
    /// waited for here, this node's handoff would wait for another's, which may in turn be
    /// waiting for this one. If this node awaits it from its previous owner, the first message
    /// marks it pending, and the new owner keeps waiting for the second; if from any holder
    /// (this node is a newcomer), the second message only relinquishes it.
    ///
    /// A shard whose owner in the previous table is a holder that is leaving is marked pending
    /// from that holder: a new owner that awaits it from any holder (a newcomer) learns where
    /// its processes come from, directly or passed on by a node the leaver handed them to.
    func handOff(_ move: ShardMove) async {
        let (capability, table) = (move.capability, move.table)
        await deliveriesDrained()
        let (vouched, unvouched) = book.withLockedValue { book in
            var (vouched, unvouched): (Set<Int>, Set<Int>) = ([], [])
            for shard in move.lost {
                guard let wait = book.awaited[ShardKey(capability: capability, shard: shard)] else { continue }
                if wait.from == nil { unvouched.insert(shard) } else { vouched.insert(shard) }
            }
            return (vouched, unvouched)
        }
        let lost = Set(move.lost)
        let handed = lost.subtracting(vouched).subtracting(unvouched)
        // Every process here of a lost shard goes now, even of a shard whose other processes
        // are still on their way: those follow in the second message.
        let processesByOwner = await takeProcesses(of: lost, from: move.host, by: table)
        let pending = pendingMarks(of: move, vouched: vouched)
        var shardsByOwner: [PeerID: [Int]] = [:]
        for holder in table.holders where holder != selfID { shardsByOwner[holder] = [] }
        for shard in handed { shardsByOwner[table.owner(ofShard: shard), default: []].append(shard) }
        for (owner, shards) in shardsByOwner {
            await send(HandoffMessage(
                capability: capability, shards: move.newcomer ? [] : shards, processes: processesByOwner[owner] ?? [],
                relinquished: move.newcomer ? shards : [], holders: Array(table.holders), dropped: move.dropped,
                pending: pending[owner] ?? [:]), to: owner, releasing: shards)
        }
        guard !vouched.isEmpty || !unvouched.isEmpty else { return }
        let keys = vouched.union(unvouched).map { ShardKey(capability: capability, shard: $0) }
        // A node that is leaving sends its last messages before it goes; another sends the
        // second message in turn with its later handoffs, which may move the same shards.
        if isLeaving.load(ordering: .relaxed) {
            await arrivals(of: keys)
            await followUp(move, vouched: vouched, unvouched: unvouched)
        } else {
            Task {
                await arrivals(of: keys)
                enqueueHandoff { await self.followUp(move, vouched: vouched, unvouched: unvouched) }
            }
        }
    }

    /// Runs `work` once the handoffs enqueued before it have gone, so that a node's handoffs
    /// reach each peer in the order of its tables; returns its task.
    @discardableResult
    func enqueueHandoff(_ work: @escaping @Sendable () async -> Void) -> Task<Void, Never> {
        lastHandoff.withLockedValue { last in
            let previous = last
            let task = Task {
                await previous?.value
                await work()
            }
            last = task
            return task
        }
    }

    /// Returns once none of `keys` is awaited here any more, or after `handoffTimeout`.
    private func arrivals(of keys: [ShardKey]) async {
        _ = await poll(every: .milliseconds(5), for: Self.handoffTimeout) {
            book.withLockedValue { book in !keys.contains { book.awaited[$0] != nil } }
        }
    }

    /// The shards each new owner in `move` is told are pending, with the node their processes
    /// come from: the `vouched` shards (from this node), and the shards of holders that are
    /// leaving (from each of them).
    private func pendingMarks(of move: ShardMove, vouched: Set<Int>) -> [PeerID: [Int: PeerID]] {
        let table = move.table
        var pending: [PeerID: [Int: PeerID]] = [:]
        for shard in vouched { pending[table.owner(ofShard: shard), default: [:]][shard] = selfID }
        guard !move.leaving.isEmpty else { return pending }
        for shard in 0..<table.shardCount {
            let (before, after) = (move.previous.owner(ofShard: shard), table.owner(ofShard: shard))
            if move.leaving.contains(before), after != selfID { pending[after, default: [:]][shard] = before }
        }
        return pending
    }

    /// Hands over the `vouched` and relinquishes the `unvouched` shards of `move`, whose
    /// processes are no longer on their way here (or took too long): the second message
    /// `handOff` promised their new owners. By then a later table may have placed some of them
    /// elsewhere, or here again: they go to their owner by this node's table now, and those
    /// it places here stay.
    private func followUp(_ move: ShardMove, vouched: Set<Int>, unvouched: Set<Int>) async {
        let capability = move.capability
        await deliveriesDrained()
        let table = table(for: capability) ?? move.table
        let (staying, going) = vouched.union(unvouched).reduce(into: (Set<Int>(), Set<Int>())) { split, shard in
            if table.owner(ofShard: shard) == selfID { split.0.insert(shard) } else { split.1.insert(shard) }
        }
        let stayingKeys = staying.map { ShardKey(capability: capability, shard: $0) }
        redeliver(book.withLockedValue { $0.departed(stayingKeys) }, capability: capability)
        let processesByOwner = await takeProcesses(of: going, from: move.host, by: table)
        for (owner, owned) in Dictionary(grouping: going, by: { table.owner(ofShard: $0) }) {
            await send(HandoffMessage(
                capability: capability, shards: owned.filter(vouched.contains), processes: processesByOwner[owner] ?? [],
                relinquished: owned.filter(unvouched.contains), holders: Array(table.holders), dropped: move.dropped,
                isFollowUp: true), to: owner, releasing: owned)
        }
    }

    /// Takes the processes of `shards` out of `host`, grouped by their owner in `table`.
    private func takeProcesses(
        of shards: Set<Int>, from host: any ProcessHost, by table: ShardTable
    ) async -> [PeerID: [(id: String, state: Value?)]] {
        let moved = await host.handOff { shards.contains(StableHash.shard($0, count: table.shardCount)) }
        return Dictionary(grouping: moved) { table.owner(of: $0.id) }
    }

    /// Sends `message` to `owner` and, once it has its processes (or could not be reached),
    /// forwards the calls held for the shards `releasing`.
    private func send(_ message: HandoffMessage, to owner: PeerID, releasing shards: [Int]) async {
        await request(message, to: owner, failure: "handoff failed; those processes restart on their new owner")
        let keys = shards.map { ShardKey(capability: message.capability, shard: $0) }
        redeliver(book.withLockedValue { $0.departed(keys) }, capability: message.capability)
    }

    /// Sends `message` to `owner` and waits for its acknowledgement (the processes are
    /// installed there, or passed on and installed further); logs `failure` if none comes.
    func request(_ message: HandoffMessage, to owner: PeerID, failure: Logger.Message) async {
        do {
            _ = try await transport.request(message.value, to: owner, channel: .processes, timeout: .seconds(5))
        } catch {
            logger.warning(failure, metadata: ["capability": "\(message.capability)", "to": "\(owner)", "error": "\(error)"])
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
}
