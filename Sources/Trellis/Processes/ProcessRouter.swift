import Dispatch
import Logging
import NIOConcurrencyHelpers
import Synchronization
import TrellisPlacement
import TrellisTransport
import TrellisWire

extension ChannelName {
    /// Calls and casts to processes, routed by capability and id.
    public static let processes: ChannelName = "processes"
}

/// Routes calls and casts by (capability, id) to the node that owns the id's shard, and serves
/// the ones this node owns.
///
/// Routing reads the cached shard table of the capability (one lock, one hash, one array
/// lookup): placement scripts never run on the request path. Both the tables and the local
/// hosts are swapped whole under a lock, so any event loop can route.
///
/// On the wire a call is a request on the `processes` channel holding
/// `[capability, id, payload, hops]`; its reply is `[0, reply]`, `[1, reason]` (the process
/// failed) or `[2, reason]` (the node does not serve the capability). A cast is a message of
/// the same shape. A node that receives a call for a shard it does not own forwards it once to
/// the owner it knows, so nodes whose tables briefly disagree still reach a server.
final class ProcessRouter: Sendable {
    private static var maxHops: Int64 { 2 }

    let selfID: PeerID
    let transport: Transport
    private let tables = NIOLockedValueBox<[String: ShardTable]>([:])
    private let hosts = NIOLockedValueBox<[String: any ProcessHost]>([:])
    let book = NIOLockedValueBox(HandoffBook())
    /// Closed while this node is joining a cluster and has no member yet.
    let joinGate = JoinGate()
    let logger: Logger
    /// Counts the calls and casts reaching `deliver`, and where they went.
    let metrics: NodeMetrics
    /// The task sending this node's latest handoffs: each rebalance's handoffs, and each
    /// second message, go out after the previous ones (see `enqueueHandoff`).
    let lastHandoff = NIOLockedValueBox<Task<Void, Never>?>(nil)
    /// Calls this node passed on to their owner that await the owner's reply.
    let forwardsInFlight = Atomic<Int>(0)
    /// Set once this node starts leaving: processes handed to it from then on are passed on
    /// to their owners, never installed here.
    let isLeaving = Atomic<Bool>(false)

    init(selfID: PeerID, transport: Transport, logger: Logger, metrics: NodeMetrics) {
        self.selfID = selfID
        self.transport = transport
        self.logger = logger
        self.metrics = metrics
    }

    /// Replaces the shard tables (capability to table) routing uses, remembering the holders
    /// of the tables replaced; returns the previous tables.
    func swapTables(_ newTables: [String: ShardTable]) -> [String: ShardTable] {
        let old = tables.withLockedValue { tables in
            defer { tables = newTables }
            return tables
        }
        book.withLockedValue { book in
            for (capability, table) in old where newTables[capability] != table { book.remember(table, of: capability) }
        }
        return old
    }

    /// Every shard table routing uses now.
    var currentTables: [String: ShardTable] { tables.withLockedValue { $0 } }

    /// The shard table routing uses for `capability`.
    func table(for capability: String) -> ShardTable? {
        tables.withLockedValue { $0[capability] }
    }

    /// Serves `capability` on this node with `host`, replacing any previous host.
    func install(_ host: any ProcessHost, for capability: String) {
        hosts.withLockedValue { $0[capability] = host }
    }

    /// The host serving `capability` here, if any.
    func host(for capability: String) -> (any ProcessHost)? {
        hosts.withLockedValue { $0[capability] }
    }

    /// Every capability served here, with its host.
    var allHosts: [String: any ProcessHost] { hosts.withLockedValue { $0 } }

    // MARK: Calling

    /// Calls process `id` of `capability` wherever it lives.
    func call(_ capability: String, id: String, payload: Value, timeout: Duration) async throws(ProcessError) -> Value {
        await joinGate.wait()
        let table = table(for: capability)
        guard let owner = table?.owner(of: id) else { throw .noNodeHasCapability(capability) }
        let deadline = ContinuousClock.now + timeout
        if owner == selfID {
            return try await callHere(capability, id: id, payload: payload, from: selfID, hops: 0, deadline: deadline, table: table)
        }
        return try await callRemote(
            owner, capability: capability, id: id, payload: payload, from: selfID, hops: 0, deadline: deadline, table: table)
    }

    /// Casts `payload` to process `id` of `capability`: returns once it is queued.
    func cast(_ capability: String, id: String, payload: Value) async throws(ProcessError) {
        await joinGate.wait()
        let table = table(for: capability)
        guard let owner = table?.owner(of: id) else { throw .noNodeHasCapability(capability) }
        if owner == selfID {
            deliver(.cast(id: id, payload: payload), capability: capability, hops: 0, origin: nil, table: table)
            return
        }
        do {
            try await transport.send(envelope(capability, id, payload, hops: 0, table: table), to: owner, channel: .processes)
        } catch {
            throw Self.processError(error, capability: capability, id: id, owner: owner)
        }
    }

    /// Calls process `id` on `owner`; `table` is this node's table of the capability.
    ///
    /// A call that could not be sent (the owner is gone, or going: the connection to it failed)
    /// waits for this node's table to name another owner and goes there, until `deadline`: a
    /// node that left or died is replaced without the caller seeing it. A call that may have
    /// reached the owner is never sent twice.
    func callRemote(
        _ owner: PeerID, capability: String, id: String, payload: Value, from caller: PeerID, hops: Int64,
        deadline: ContinuousClock.Instant, table: ShardTable?
    ) async throws(ProcessError) -> Value {
        var (owner, table) = (owner, table)
        let allowed = deadline - .now
        while true {
            let answer: Value
            do {
                let remaining = max(deadline - .now, .milliseconds(1))
                answer = try await transport.request(
                    envelope(capability, id, payload, hops: hops, table: table, timeout: remaining), to: owner,
                    channel: .processes, timeout: remaining)
            } catch {
                guard Self.ownerMayBeGone(error),
                      let next = await nextOwner(of: id, capability: capability, after: owner, before: deadline)
                else {
                    throw Self.processError(error, capability: capability, id: id, owner: owner)
                }
                metrics.routed(isCall: true, .rerouted)
                guard next.owner != selfID else {
                    return try await callHere(
                        capability, id: id, payload: payload, from: caller, hops: hops, deadline: deadline, table: next.table)
                }
                (owner, table) = (next.owner, next.table)
                continue
            }
            guard case .array(let parts) = answer, parts.count == 2, case .int(let status) = parts[0] else {
                throw .ownerUnreachable(capability: capability, id: id, owner: owner, reason: "malformed reply")
            }
            switch status {
            case 0: return parts[1]
            case 1: throw .processFailed(capability: capability, id: id, reason: parts[1].stringValue ?? "unknown")
            // The node forwarding this call ran out of the caller's time first.
            case 3: throw .timeout(capability: capability, id: id, owner: owner, allowed)
            default: throw .ownerUnreachable(capability: capability, id: id, owner: owner, reason: parts[1].stringValue ?? "unknown")
            }
        }
    }

    /// Calls process `id` through this node's own delivery (served here, or held while its
    /// shard moves, and forwarded by `deadline`); `table` is this node's table of the capability.
    private func callHere(
        _ capability: String, id: String, payload: Value, from caller: PeerID, hops: Int64,
        deadline: ContinuousClock.Instant, table: ShardTable?
    ) async throws(ProcessError) -> Value {
        try await withUnsafeContinuation { continuation in
            deliver(.call(id: id, payload: payload, from: caller, deadline: deadline) { continuation.resume(returning: $0) },
                    capability: capability, hops: hops, origin: nil, table: table)
        }.get()
    }

    /// Whether `error` says the call was not sent because its owner could not be reached.
    private static func ownerMayBeGone(_ error: TransportError) -> Bool {
        switch error {
        case .peerUnreachable, .partitioned: return true
        case .timeout, .connectionLost, .remoteFailure, .messageTooLarge, .shutDown: return false
        }
    }

    /// How long a call from a node that does not say how long its caller waits may take when
    /// it is forwarded.
    static var unstatedCallTimeout: Duration { .seconds(5) }

    /// How often a call that could not be sent looks whether its shard has a new owner.
    private static var rerouteCheckInterval: Duration { .milliseconds(10) }

    /// Waits until this node's table names another owner than `owner` for `id`; that owner
    /// and the table, or `nil` at `deadline` (or when no node serves the capability any more).
    private func nextOwner(
        of id: String, capability: String, after owner: PeerID, before deadline: ContinuousClock.Instant
    ) async -> (owner: PeerID, table: ShardTable)? {
        while ContinuousClock.now < deadline {
            guard let table = table(for: capability) else { return nil }
            let next = table.owner(of: id)
            if next != owner { return (next, table) }
            try? await Task.sleep(for: Self.rerouteCheckInterval)
        }
        return nil
    }

    private static func processError(_ error: TransportError, capability: String, id: String, owner: PeerID) -> ProcessError {
        switch error {
        case .timeout(_, let duration):
            return .timeout(capability: capability, id: id, owner: owner, duration)
        case .messageTooLarge:
            return .processFailed(capability: capability, id: id, reason: error.description)
        case .peerUnreachable, .connectionLost, .partitioned, .shutDown, .remoteFailure:
            return .ownerUnreachable(capability: capability, id: id, owner: owner, reason: error.description)
        }
    }

    // MARK: Serving

    /// Serves a request that arrived on the `processes` channel: a call, or a handoff.
    ///
    /// The reply is `[status, value]`: 0 and the process's reply (or nil for a handoff); 1 and
    /// why the process failed; 2 and why the call could not be served here; 3 and a description
    /// when the caller's time ran out here (a forwarded call). `callRemote` reads them back.
    func serve(_ message: InboundMessage, _ responder: Responder) {
        guard case .value(let value) = message.payload else {
            responder.reply(.array([.int(2), .string("malformed call envelope")]))
            return
        }
        if let handoff = HandoffMessage(value) {
            receiveWhenCaughtUp(handoff, from: message.from) { responder.reply(.array([.int(0), .nil])) }
            return
        }
        guard let call = Envelope(value) else {
            responder.reply(.array([.int(2), .string("malformed call envelope")]))
            return
        }
        let deadline = ContinuousClock.now + (call.timeout ?? Self.unstatedCallTimeout)
        deliver(.call(id: call.id, payload: call.payload, from: message.from, deadline: deadline) { result in
            switch result {
            case .success(let reply): responder.reply(.array([.int(0), reply]))
            case .failure(.processFailed(_, _, let reason)): responder.reply(.array([.int(1), .string(reason)]))
            case .failure(let error):
                let status: Int64 = if case .timeout = error { 3 } else { 2 }
                responder.reply(.array([.int(status), .string(error.description)]))
            }
        }, capability: call.capability, hops: call.hops, origin: Origin(sender: message.from, view: call.senderView))
    }

    /// Serves casts that arrived on the `processes` channel.
    func serveCasts(_ batch: [InboundMessage]) {
        for message in batch {
            guard case .value(let value) = message.payload, let cast = Envelope(value) else { continue }
            deliver(.cast(id: cast.id, payload: cast.payload), capability: cast.capability, hops: cast.hops,
                    origin: Origin(sender: message.from, view: cast.senderView))
        }
    }

    /// Serves `message` here, holds it while its shard's processes are on their way here, or
    /// forwards it to the owner this node's table names.
    ///
    /// A message is served here when this node owns its shard, when the shard was handed to
    /// this node, or when it has been forwarded `maxHops` times already (tables disagree).
    /// A message from another node (its `origin`) is held until this node's table changes (or
    /// `handoffTimeout` passes) when the two tables disagree in a way only a newer table
    /// settles: the sender's knows holders this node's has never had (this node cannot tell
    /// whether the process is on its way from one of them), or the sender sent it here because
    /// its table names this node the owner while this node's names the sender. A node that
    /// is leaving holds no such message: its table is right about itself.
    func deliver(_ message: HeldMessage, capability: String, hops: Int64, origin: Origin? = nil) {
        deliver(message, capability: capability, hops: hops, origin: origin, table: table(for: capability))
    }

    /// `deliver`, with this node's table of the capability already read.
    private func deliver(_ message: HeldMessage, capability: String, hops: Int64, origin: Origin?, table: ShardTable?) {
        let host = host(for: capability)
        let key = table.map { ShardKey(capability: capability, shard: StableHash.shard(message.id, count: $0.shardCount)) }
        let mayWaitForNewTable = host != nil && !isLeaving.load(ordering: .relaxed)
        let (held, adopted, startsWait) = book.withLockedValue { book -> (Bool, Bool, Bool) in
            if let origin, mayWaitForNewTable, book.isBehind(origin.view, capability: capability, current: table) {
                let first = book.holdForNewTable(.init(message: message, hops: hops, origin: origin, bounced: false), of: capability)
                return (true, false, first)
            }
            if let key, !book.isIdle {
                if book.hold(message, for: key) { return (true, false, false) }
                book.deliveries += 1
                return (false, book.adopted.contains(key), false)
            }
            book.deliveries += 1
            return (false, false, false)
        }
        if held {
            if startsWait { releaseAwaitingNewTableLater(capability) }
            return
        }
        defer { book.withLockedValue { $0.deliveries -= 1 } }
        // The owner comes from the table as it is now that this delivery is counted: a handoff
        // waits for counted deliveries before it takes its processes, and the tables change
        // before a handoff starts, so a delivery counted too late to be waited for sees the
        // new table and forwards. The table read on entry may be older than that.
        let current = self.table(for: capability)
        let isCall = if case .call = message { true } else { false }
        if !adopted, let owner = current?.owner(of: message.id), owner != selfID {
            if let origin, owner == origin.sender, mayWaitForNewTable {
                return awaitNewTable(message, capability: capability, hops: hops, origin: origin, table: current)
            }
            if hops < Self.maxHops {
                metrics.routed(isCall: isCall, .forwarded)
                forward(message, capability: capability, to: owner, hops: hops + 1, table: current)
                return
            }
        }
        guard let host else {
            metrics.routed(isCall: isCall, .unserved)
            if case .call(let id, _, _, _, let reply) = message {
                reply(.failure(.ownerUnreachable(
                    capability: capability, id: id, owner: selfID, reason: "\(selfID) does not serve '\(capability)'")))
            }
            return
        }
        metrics.routed(isCall: isCall, .served)
        switch message {
        case .call(let id, let payload, let from, _, let reply): host.call(id, payload: payload, from: from, reply: reply)
        case .cast(let id, let payload): host.cast(id, payload: payload)
        }
    }

    /// Holds `message`, which bounced (its sender's table names this node its owner, and this
    /// node's table, now `table`, names the sender), until this node's table changes; routes
    /// it afresh at once if it already has.
    private func awaitNewTable(_ message: HeldMessage, capability: String, hops: Int64, origin: Origin, table: ShardTable?) {
        let (held, first) = book.withLockedValue { book -> (Bool, Bool) in
            guard self.table(for: capability) == table else { return (false, false) }
            return (true, book.holdForNewTable(.init(message: message, hops: hops, origin: origin, bounced: true), of: capability))
        }
        guard held else { return deliver(message, capability: capability, hops: 0, origin: origin) }
        if first { releaseAwaitingNewTableLater(capability) }
    }

    private func forward(_ message: HeldMessage, capability: String, to owner: PeerID, hops: Int64, table: ShardTable?) {
        switch message {
        case .call(let id, let payload, let from, let deadline, let reply):
            forwardsInFlight.add(1, ordering: .relaxed)
            Task {
                defer { forwardsInFlight.subtract(1, ordering: .relaxed) }
                do throws(ProcessError) {
                    reply(.success(try await callRemote(
                        owner, capability: capability, id: id, payload: payload, from: from, hops: hops,
                        deadline: deadline, table: table)))
                } catch {
                    reply(.failure(error))
                }
            }
        case .cast(let id, let payload):
            _ = transport.trySend(envelope(capability, id, payload, hops: hops, table: table), to: owner, channel: .processes)
        }
    }

    // MARK: Lifecycle

    /// Passivates, on every host, the processes idle for `idle` or longer.
    func passivateIdle(after idle: Duration) async {
        let nanoseconds = UInt64(idle.components.seconds) * 1_000_000_000 + UInt64(idle.components.attoseconds / 1_000_000_000)
        let now = DispatchTime.now().uptimeNanoseconds
        for host in allHosts.values { await host.passivate(idleNanoseconds: nanoseconds, now: now) }
    }
}
