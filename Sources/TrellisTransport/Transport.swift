import Crypto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TrellisWire

/// The node's network layer: an authenticated TCP listener plus outbound connections per
/// (peer, channel), with coalesced writes, request/response and reconnection.
///
/// A node writes messages and requests only on connections it opened; the accepting side
/// writes back only replies and pongs. `Transport` is `Sendable`: its mutable state is behind
/// locks, and per-connection protocol state is confined to the connection's event loop.
public final class Transport: Sendable {
    /// This node's id: `name@host:boundPort`.
    public let localID: PeerID
    /// Control-plane events. Iterate it from a single task.
    public let events: AsyncStream<TransportEvent>

    let config: TransportConfig
    let logger: Logger
    /// The cookie's bytes; `SymmetricKey` is not `Sendable`, so keys are made per handshake.
    private let cookie: [UInt8]
    private let announcedMetadata: NIOLockedValueBox<Value>
    let onMessages: @Sendable ([InboundMessage]) -> Void
    let onRequest: @Sendable (InboundMessage, Responder) -> Void
    let group: any EventLoopGroup
    let state = NIOLockedValueBox(LinkTable())
    /// Admission control for inbound connections (the caps in `config.limits`).
    let inboundGate: InboundGate
    private let eventSink: AsyncStream<TransportEvent>.Continuation
    private let serverChannel: any Channel
    /// Whether the listener has closed: by `shutdown()`, or by its event loop shutting down.
    private let listenerClosed: NIOLockedValueBox<Bool>

    private init(
        config: TransportConfig, localID: PeerID, group: any EventLoopGroup, serverChannel: any Channel,
        onMessages: @escaping @Sendable ([InboundMessage]) -> Void,
        onRequest: @escaping @Sendable (InboundMessage, Responder) -> Void
    ) {
        self.config = config
        self.localID = localID
        self.group = group
        self.serverChannel = serverChannel
        let listenerClosed = NIOLockedValueBox(false)
        self.listenerClosed = listenerClosed
        serverChannel.closeFuture.whenComplete { _ in listenerClosed.withLockedValue { $0 = true } }
        self.onMessages = onMessages
        self.onRequest = onRequest
        self.inboundGate = InboundGate(limits: config.limits)
        var logger = config.logger
        logger[metadataKey: "node"] = "\(localID)"
        self.logger = logger
        self.cookie = Array(config.cookie.utf8)
        self.announcedMetadata = NIOLockedValueBox(Handshake.metadataValue(config.metadata))
        (self.events, self.eventSink) = AsyncStream.makeStream(of: TransportEvent.self)
    }

    /// Binds the listener and starts accepting authenticated connections.
    ///
    /// - Parameters:
    ///   - onMessages: called on an event loop with the application messages of one socket read,
    ///     in arrival order (so a flood costs one call per read, not one per message); keep it
    ///     short.
    ///   - onRequest: called on an event loop for each request; answer through the `Responder`,
    ///     synchronously or later from any thread.
    /// - Throws: the bind error when the address is unavailable.
    public static func start(
        _ config: TransportConfig, group: any EventLoopGroup,
        onMessages: @escaping @Sendable ([InboundMessage]) -> Void,
        onRequest: @escaping @Sendable (InboundMessage, Responder) -> Void
    ) async throws -> Transport {
        let ready = NIOLockedValueBox<Transport?>(nil)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: config.waterMark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let transport = ready.withLockedValue({ $0 }) else { throw TransportError.shutDown }
                    try transport.acceptInbound(channel)
                }
            }
            .bind(host: config.host, port: config.port).get()
        let port = server.localAddress?.port ?? config.port
        let transport = Transport(
            config: config, localID: PeerID(name: config.name, host: config.host, port: port), group: group,
            serverChannel: server, onMessages: onMessages, onRequest: onRequest)
        ready.withLockedValue { $0 = transport }
        try await server.setOption(.autoRead, value: true).get()
        transport.logger.info("listening")
        return transport
    }

    /// Sends a membership message on our outbound membership connection, opening one if
    /// needed. Never blocks: while the connection is not up and its queue is full, the message
    /// is dropped with a log line.
    public func sendMembership(_ message: EncodedValue, to peer: PeerID) {
        guard let connection = connection(to: peer, channel: .membership) else { return }
        let result = connection.outbox.enqueue(.never) { FrameCodec.writeEncoded(.message, message, into: &$0) }
        switch result {
        case .enqueued: break
        case .full: logger.warning("dropped membership message to \(peer): not connected yet and the queue is full")
        case .closed(let reason): logger.debug("dropped membership message to \(peer): \(reason)")
        case .tooLarge(let size): logger.error("dropped membership message to \(peer): \(size) bytes exceeds maxFrameSize")
        }
    }

    /// `sendMembership` for a value not encoded yet.
    public func sendMembership(_ value: Value, to peer: PeerID) {
        sendMembership(EncodedValue(value), to: peer)
    }

    /// What this node says about itself in handshakes: the latest metadata announced.
    var metadataValue: Value { announcedMetadata.withLockedValue { $0 } }

    /// Replaces the tags and capabilities this node announces, and tells every peer connected
    /// to it now (they see `.metadataChanged`); later handshakes carry the new metadata.
    public func announce(_ metadata: PeerMetadata) {
        let value = Handshake.metadataValue(metadata)
        announcedMetadata.withLockedValue { $0 = value }
        let listeners = state.withLockedValue { table in
            table.inbound.values.filter { $0.peer != nil && $0.channel == .membership }.map(\.connection)
        }
        for connection in listeners {
            _ = connection.outbox.enqueue(.ifOpen) { FrameCodec.writeValue(.metadata, value, into: &$0) }
        }
    }

    /// Pings the peer on our outbound membership connection; the pong arrives as
    /// `TransportEvent.heartbeatAck`. Does nothing unless that connection is up.
    public func sendHeartbeat(to peer: PeerID) {
        let connection = state.withLockedValue { $0.links[LinkKey(peer: peer, channel: .membership)]?.connection }
        _ = connection?.outbox.enqueue(.ifOpen) { FrameCodec.writeEmpty(.ping, into: &$0) }
    }

    /// Sends `value` on `channel`, in order with other sends to that peer and channel (with
    /// the same `key`, when the channel has several connections).
    ///
    /// Returns once the message is queued; waits while the connection's queue is over
    /// `outboxHighWatermark`. Opens a connection if there is none. On a monotonic channel, a
    /// keyed message replaces one with the same key that is still queued.
    ///
    /// - Throws: `.partitioned` at once for a peer passed to `setUnreachable`,
    ///   `.peerUnreachable` when the connection closes first.
    ///
    /// Runs on the caller's executor, and without suspending while the queue has room.
    public nonisolated(nonsending) func send(
        _ value: Value, to peer: PeerID, channel: ChannelName = .default, key: String? = nil
    ) async throws(TransportError) {
        while let full = try enqueue(to: peer, channel: channel, key: key, { FrameCodec.writeValue(.message, value, into: &$0) }) {
            try await waitForRoom(on: full, to: peer)
        }
    }

    /// Queues `value` on `channel` without waiting: `false` (and nothing is queued) while that
    /// connection's queue is over its watermark or closed. For relaying, where a message that
    /// cannot go now is better dropped than waited for. Opens a connection if there is none.
    public func trySend(_ value: Value, to peer: PeerID, channel: ChannelName) -> Bool {
        guard let connection = try? sendingConnection(to: peer, channel: channel) else { return false }
        if case .enqueued = connection.outbox.enqueue(.wait, { FrameCodec.writeValue(.message, value, into: &$0) }) {
            return true
        }
        return false
    }

    /// Sends raw bytes on `channel`; they arrive as `Payload.bytes`.
    public nonisolated(nonsending) func send(
        bytes: [UInt8], to peer: PeerID, channel: ChannelName = .default, key: String? = nil
    ) async throws(TransportError) {
        while let full = try enqueue(to: peer, channel: channel, key: key, { FrameCodec.writeBytes(bytes, into: &$0) }) {
            try await waitForRoom(on: full, to: peer)
        }
    }

    /// Sends the readable bytes of `bytes` on `channel`; they arrive as `Payload.bytes`.
    public nonisolated(nonsending) func send(
        bytes: ByteBuffer, to peer: PeerID, channel: ChannelName = .default, key: String? = nil
    ) async throws(TransportError) {
        while let full = try enqueue(to: peer, channel: channel, key: key, { FrameCodec.writeBytes(bytes, into: &$0) }) {
            try await waitForRoom(on: full, to: peer)
        }
    }

    /// Sends a request and waits for the peer's reply.
    ///
    /// - Throws: `.timeout` when no reply arrives within `timeout` (checked every 10 ms),
    ///   `.remoteFailure` when the peer's handler fails it, `.peerUnreachable` when the
    ///   request could not be sent (the connection failed first), `.connectionLost` when the
    ///   connection closed after it was sent and before the reply, `.partitioned` at once for
    ///   a peer passed to `setUnreachable`.
    ///
    /// Runs on the caller's executor: a caller on a connection's event loop (see
    /// `EventLoopTaskExecutor`) is resumed by the reply without a thread switch. On a channel
    /// with several connections, `key` picks the connection as for `send`.
    public nonisolated(nonsending) func request(
        _ value: Value, to peer: PeerID, channel: ChannelName = .default, key: String? = nil, timeout: Duration
    ) async throws(TransportError) -> Value {
        let connection = try sendingConnection(to: peer, channel: channel, key: key)
        guard let pending = connection.pending else { throw .shutDown }
        if !connection.outbox.hasRoom, await !connection.outbox.waitForRoom() {
            throw .peerUnreachable(peer, connection.outbox.closedReason ?? "connection closed")
        }
        let limit = config.maxFrameSize
        let result = await withUnsafeContinuation { (continuation: PendingRequests.Continuation) in
            switch pending.register(continuation, timeout: timeout) {
            case .failure(let error):
                continuation.resume(returning: .failure(error))
            case .success(let registration):
                let id = registration.id
                let flush = Self.requestFlush(
                    othersOutstanding: registration.othersOutstanding, busyWait: config.busyWait,
                    saturated: LoopActivity.isSaturated(now: NIODeadline.now().uptimeNanoseconds)
                )
                let queued = connection.outbox.enqueue(.never, flush: flush) {
                    FrameCodec.writeRequest(id: id, value, into: &$0)
                }
                switch queued {
                case .enqueued: break
                case .full: pending.complete(id, .failure(.peerUnreachable(peer, "not connected yet and the queue is full")))
                case .closed(let reason): pending.complete(id, .failure(.peerUnreachable(peer, reason)))
                case .tooLarge(let size): pending.complete(id, .failure(.messageTooLarge(size: size, limit: limit)))
                }
            }
        }
        return try result.get()
    }

    /// When a request is written. It leads (`Outbox.Flush.leading`), so that the peer starts on
    /// it while this side produces the rest of its burst, hiding the peer's wake-up, unless
    /// the loops are awake anyway and one write per burst costs less:
    /// - while this process's loops are `saturated` (`LoopActivity`), no request leads;
    /// - with busy waiting on (nodes of a cluster share the setting, so the peer polls), a
    ///   request leads only when no other on its connection awaits a reply, as a lone
    ///   caller's does, since it would otherwise wait for the end of the loop's tick.
    static func requestFlush(othersOutstanding: Bool, busyWait: BusyWait, saturated: @autoclosure () -> Bool) -> Outbox.Flush {
        if othersOutstanding && busyWait.isOn { return .coalesced }
        return saturated() ? .coalesced : .leading
    }

    /// How long a graceful shutdown waits, at most, for peers to close the connections they
    /// dialed once told this node is going away.
    public static var goAwayGrace: Duration { .seconds(1) }

    /// Closes the listener and every connection, fails outstanding requests and ends `events`.
    /// Does not shut down the event loop group.
    ///
    /// With `gracefully`, peers lose no request in doubt: the listener closes first, each
    /// peer connected to this node is told it is going away (it sends no more requests on
    /// that connection, and those already on their way are refused as not handled, so the
    /// peer can send them elsewhere), and the connections close once the peers have had the
    /// replies to the requests this node took, or after `goAwayGrace`.
    public func shutdown(gracefully: Bool = false) async {
        if gracefully { await goAway() }
        let connections: [Connection] = state.withLockedValue { table in
            table.isShutDown = true
            table.wanted = []
            defer {
                table.links = [:]
                table.inbound = [:]
                table.closing = [:]
            }
            return table.links.values.map(\.connection) + table.inbound.values.map(\.connection)
                + table.closing.values.map(\.connection)
        }
        // Every dial that started has handed its connect to NIO: the group may shut down now.
        _ = await poll(every: .milliseconds(1), for: .seconds(1)) { state.withLockedValue { $0.dialsStarting == 0 } }
        // What has closed already is left alone: when the event loop group shut down first, it
        // closed everything, and a close asked of a loop that is gone would never run.
        let open = connections.filter { !$0.hasEnded }
        let listening = !listenerClosed.withLockedValue { $0 }
        if listening { serverChannel.close(promise: nil) }
        for connection in open { connection.close(reason: "transport shut down") }
        let closes = (listening ? [serverChannel.closeFuture] : []) + open.compactMap(\.closeFuture)
        if await !Self.allComplete(closes, within: .seconds(5)) {
            logger.warning("shut down without seeing every connection close: was the event loop group shut down first?")
        }
        logger.info("shut down")
        eventSink.finish()
    }

    /// The first half of a graceful shutdown: see `shutdown(gracefully:)`.
    private func goAway() async {
        if !listenerClosed.withLockedValue({ $0 }) {
            serverChannel.close(promise: nil)
            _ = await Self.allComplete([serverChannel.closeFuture], within: Self.goAwayGrace)
        }
        let inbound = state.withLockedValue { table in table.inbound.values.filter { $0.peer != nil }.map(\.connection) }
        for connection in inbound { connection.goAway() }
        _ = await poll(every: .milliseconds(5), for: Self.goAwayGrace) { inbound.allSatisfy(\.hasEnded) }
    }

    /// Waits until every future completes, or `limit` passes: a future of an event loop that
    /// has shut down never reports its completion. `false` if the limit passed first.
    private static func allComplete(_ futures: [EventLoopFuture<Void>], within limit: Duration) async -> Bool {
        guard !futures.isEmpty else { return true }
        struct Waiting {
            var continuation: CheckedContinuation<Bool, Never>?
            var left: Int
            var timer: Task<Void, Never>?
        }
        let waiting = NIOLockedValueBox(Waiting(left: futures.count))
        return await withCheckedContinuation { continuation in
            waiting.withLockedValue { $0.continuation = continuation }
            let finish: @Sendable (Bool) -> Void = { outcome in
                let (continuation, timer) = waiting.withLockedValue { ($0.continuation.take(), $0.timer) }
                timer?.cancel()
                continuation?.resume(returning: outcome)
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled { finish(false) }
            }
            waiting.withLockedValue { $0.timer = timer }
            for future in futures {
                future.whenComplete { _ in
                    let left = waiting.withLockedValue { state in
                        state.left -= 1
                        return state.left
                    }
                    if left == 0 { finish(true) }
                }
            }
        }
    }

    /// The HMAC key derived from the cookie.
    var key: SymmetricKey { SymmetricKey(data: cookie) }

    func emit(_ event: TransportEvent) {
        eventSink.yield(event)
    }

    /// Queues the frame `frame` writes for an application send, synchronously: `nil` once
    /// queued, or the connection whose queue is full, to wait on with `waitForRoom(on:to:)`
    /// before trying again.
    private func enqueue(
        to peer: PeerID, channel: ChannelName, key: String?, _ frame: (inout ByteBuffer) -> Void
    ) throws(TransportError) -> Connection? {
        let settings = config.settings(for: channel)
        let connection = try sendingConnection(to: peer, channel: channel, lane: lane(settings, key: key))
        let queued: Outbox.EnqueueResult
        if let key, settings.monotonic {
            queued = connection.outbox.enqueueLatest(.wait, key: key, frame)
        } else {
            queued = connection.outbox.enqueue(.wait, frame)
        }
        switch queued {
        case .enqueued: return nil
        case .full: return connection
        case .closed(let reason): throw .peerUnreachable(peer, reason)
        case .tooLarge(let size): throw .messageTooLarge(size: size, limit: config.maxFrameSize)
        }
    }

    /// Suspends until `connection`'s queue has room again.
    ///
    /// - Throws: `.peerUnreachable` when the connection closes first.
    private func waitForRoom(on connection: Connection, to peer: PeerID) async throws(TransportError) {
        if await !connection.outbox.waitForRoom() {
            throw .peerUnreachable(peer, connection.outbox.closedReason ?? "connection closed")
        }
    }

    private func acceptInbound(_ channel: any Channel) throws {
        let connection = Connection(inboundOn: channel.eventLoop, config: config)
        let accepted = state.withLockedValue { table in
            guard !table.isShutDown else { return false }
            table.inbound[ObjectIdentifier(connection)] = InboundLink(connection: connection)
            return true
        }
        guard accepted else { throw TransportError.shutDown }
        try addTLS(to: channel, accepted: true)
        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(transport: self, connection: connection, role: .acceptor))
    }
}

extension TransportConfig {
    var waterMark: ChannelOptions.Types.WriteBufferWaterMark {
        ChannelOptions.Types.WriteBufferWaterMark(low: outboxHighWatermark / 2, high: outboxHighWatermark)
    }
}
