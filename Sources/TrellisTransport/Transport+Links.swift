import NIOCore
import NIOPosix
import TrellisWire

/// One outbound stream: a peer, a channel, and which of the channel's parallel connections.
struct LinkKey: Hashable {
    let peer: PeerID
    let channel: ChannelName
    var lane = 0
}

/// The current connection of an outbound stream and how to keep it up.
struct Link {
    /// The connection senders queue on: being dialed, up, or waiting out a backoff delay.
    var connection: Connection
    /// Whether `connect(to:)` asked for it, so it is redialed when it fails.
    var persistent: Bool
    /// Consecutive failed attempts since the last successful handshake.
    var failures: Int
}

/// An accepted connection, and the peer it authenticated as once its handshake is done.
struct InboundLink {
    let connection: Connection
    var peer: PeerID?
    var channel: ChannelName?
}

/// Everything `Transport` tracks across connections, behind one lock.
struct LinkTable {
    var links: [LinkKey: Link] = [:]
    var wanted: Set<PeerID> = []
    var inbound: [ObjectIdentifier: InboundLink] = [:]
    /// Outbound connections `disconnect(from:)` took out of `links` that still await replies
    /// to requests sent on them; shutdown and partitions close them at once.
    var closing: [ObjectIdentifier: (connection: Connection, peer: PeerID)] = [:]
    /// Peers this node is partitioned from (`setUnreachable`): no connection to or from them.
    var unreachable: Set<PeerID> = []
    var isShutDown = false
    /// Dials between their check of `isShutDown` and handing the connect to NIO: shutdown
    /// waits for them, so that none reaches a loop its group has shut down meanwhile.
    var dialsStarting = 0

    /// Whether `peer` is cut off; cheap while there is no partition.
    func isUnreachable(_ peer: PeerID) -> Bool {
        !unreachable.isEmpty && unreachable.contains(peer)
    }
}

extension Transport {
    /// Keeps outbound connections to `peer` up on every configured channel, redialing with
    /// exponential backoff and jitter, until `disconnect(from:)`.
    public func connect(to peer: PeerID) {
        let fresh: [Connection] = state.withLockedValue { table in
            guard !table.isShutDown else { return [] }
            table.wanted.insert(peer)
            var fresh: [Connection] = []
            let keys = config.persistentChannels.flatMap { channel in
                (0..<config.settings(for: channel).parallelism).map { LinkKey(peer: peer, channel: channel, lane: $0) }
            }
            for key in keys {
                if table.links[key] != nil {
                    table.links[key]?.persistent = true
                } else {
                    let connection = newConnection(key)
                    table.links[key] = Link(connection: connection, persistent: true, failures: 0)
                    fresh.append(connection)
                }
            }
            return fresh
        }
        for connection in fresh { dial(connection) }
    }

    /// Closes every outbound connection to `peer`, once what is already queued on it is written
    /// and the requests already sent on it are answered (see `Connection.closeAfterQueued`),
    /// and stops reconnecting to it. Application sends to it afterwards open a new connection.
    ///
    /// Connections on the channels in `kept` stay open, but are no longer redialed: a leaving
    /// node keeps those it forwards calls on until it stops.
    public func disconnect(from peer: PeerID, keeping kept: Set<ChannelName> = []) {
        let connections: [Connection] = state.withLockedValue { table in
            table.wanted.remove(peer)
            let keys = table.links.keys.filter { $0.peer == peer && !kept.contains($0.channel) }
            let connections = keys.compactMap { table.links.removeValue(forKey: $0)?.connection }
            // Only a connection with a socket drains; its handler reports its end, which unlists it.
            for connection in connections where connection.isAttached {
                table.closing[ObjectIdentifier(connection)] = (connection, peer)
            }
            return connections
        }
        for connection in connections { connection.closeAfterQueued(reason: "disconnected") }
    }

    /// The peers whose connections on `channel` to this node (dialed by them) are open.
    public func inboundPeers(on channel: ChannelName) -> Set<PeerID> {
        state.withLockedValue { table in
            Set(table.inbound.values.compactMap { $0.channel == channel ? $0.peer : nil })
        }
    }

    /// The connection to queue on for `peer` and `channel` (the one `key` picks, or the first),
    /// dialing one on demand (without redialing if it fails); `nil` once shut down. For a peer
    /// this node is partitioned from, the dial fails at once, so membership traffic reports
    /// the peer down as for a refused connection.
    func connection(to peer: PeerID, channel: ChannelName, key: String? = nil) -> Connection? {
        let index = key.map { lane(config.settings(for: channel), key: $0) } ?? 0
        switch lookUp(LinkKey(peer: peer, channel: channel, lane: index), refusingUnreachable: false) {
        case .found(let connection): return connection
        case .shutDown, .unreachable: return nil
        }
    }

    /// The connection to queue application traffic on, as `connection(to:channel:)`, except
    /// that a peer this node is partitioned from is refused at once, without a connection.
    ///
    /// - Throws: `.partitioned` for such a peer, `.shutDown` once shut down.
    func sendingConnection(to peer: PeerID, channel: ChannelName, key: String? = nil) throws(TransportError) -> Connection {
        try sendingConnection(to: peer, channel: channel, lane: lane(config.settings(for: channel), key: key))
    }

    /// `sendingConnection(to:channel:key:)` with the lane already picked.
    func sendingConnection(to peer: PeerID, channel: ChannelName, lane: Int) throws(TransportError) -> Connection {
        switch lookUp(LinkKey(peer: peer, channel: channel, lane: lane), refusingUnreachable: true) {
        case .found(let connection): return connection
        case .unreachable: throw .partitioned(peer)
        case .shutDown: throw .shutDown
        }
    }

    /// The connection of a channel with `settings` a message with `key` goes on: the same for
    /// the same key, any for no key.
    func lane(_ settings: ChannelSettings, key: String?) -> Int {
        guard settings.parallelism > 1 else { return 0 }
        guard let key else { return Int.random(in: 0..<settings.parallelism) }
        return settings.connection(forKey: key)
    }

    private enum LookUp {
        case found(Connection)
        case unreachable
        case shutDown
    }

    /// Finds or creates (and dials) the link for `key`, with one lock acquisition.
    private func lookUp(_ key: LinkKey, refusingUnreachable: Bool) -> LookUp {
        let (result, isNew): (LookUp, Bool) = state.withLockedValue { table in
            if refusingUnreachable, table.isUnreachable(key.peer) { return (.unreachable, false) }
            if let link = table.links[key] { return (.found(link.connection), false) }
            guard !table.isShutDown else { return (.shutDown, false) }
            let connection = newConnection(key)
            table.links[key] = Link(connection: connection, persistent: false, failures: 0)
            return (.found(connection), true)
        }
        if isNew, case .found(let connection) = result { dial(connection) }
        return result
    }

    /// Called on the event loop when an outbound connection completed its handshake.
    func outboundUp(_ connection: Connection, peer: PeerID, metadata: PeerMetadata) {
        if connection.channelName == .membership { emit(.connectionUp(peer, metadata)) }
    }

    /// Called exactly once per connection when it ends, whether it never connected, failed its
    /// handshake, or closed after being up. Redials persistent links after a backoff delay.
    func connectionEnded(_ connection: Connection, wasUp: Bool, reason: String) {
        guard connection.markEnded() else { return }
        guard let peer = connection.peer, let channel = connection.channelName else {
            connection.close(reason: reason)
            _ = state.withLockedValue { $0.inbound.removeValue(forKey: ObjectIdentifier(connection)) }
            return
        }
        let key = LinkKey(peer: peer, channel: channel, lane: connection.lane)
        let (current, retry): (Bool, (Connection, TimeAmount)?) = state.withLockedValue { table in
            table.closing[ObjectIdentifier(connection)] = nil
            guard let link = table.links[key], link.connection === connection else { return (false, nil) }
            guard link.persistent, table.wanted.contains(peer), !table.isShutDown else {
                table.links[key] = nil
                return (true, nil)
            }
            let failures = wasUp ? 0 : link.failures + 1
            let next = newConnection(key, on: connection.eventLoop)
            table.links[key] = Link(connection: next, persistent: true, failures: failures)
            return (true, (next, backoff(failures: failures)))
        }
        // Closed only once unlinked: a sender that `close` fails may retry at once, and must then
        // get a new connection, not this one again (whose requests all fail with this reason).
        let dropped = connection.close(reason: reason)
        if dropped > 0 { logger.warning("dropped \(dropped) queued byte(s) for \(peer) on \(channel): \(reason)") }
        if wasUp {
            logger.info("connection to \(peer) on \(channel) down: \(reason)")
            if channel == .membership { emit(.connectionDown(peer, reason: reason)) }
        } else if current {
            logger.warning("connecting to \(peer) on \(channel) failed: \(reason)")
            if channel == .membership { emit(.connectFailed(peer, reason: reason)) }
        }
        if let (next, delay) = retry {
            // Scheduled from the loop itself: a loop that is running accepts the timer, and a
            // loop shutting down fails it. Scheduling from another thread on a loop that has
            // already shut down would drop the timer and leak its promise.
            next.eventLoop.executeInLoop {
                next.eventLoop.scheduleTask(in: delay) { self.redial(next, key: key) }
            }
        }
    }

    private func redial(_ connection: Connection, key: LinkKey) {
        let current = state.withLockedValue { $0.links[key]?.connection === connection }
        if current { dial(connection) }
    }

    /// A connection for `key` on `eventLoop`, or on the group's next loop.
    private func newConnection(_ key: LinkKey, on eventLoop: (any EventLoop)? = nil) -> Connection {
        Connection(outboundTo: key.peer, channel: key.channel, lane: key.lane, eventLoop: eventLoop ?? group.next(), config: config)
    }

    private func dial(_ connection: Connection) {
        guard let peer = connection.peer else { return }
        enum Go { case dial, unreachable, shutDown }
        let go: Go = state.withLockedValue { table in
            if table.isShutDown { return .shutDown }
            if table.isUnreachable(peer) { return .unreachable }
            table.dialsStarting += 1
            return .dial
        }
        switch go {
        case .dial: break
        case .unreachable: return connectionEnded(connection, wasUp: false, reason: Self.partitionReason(peer))
        case .shutDown: return connectionEnded(connection, wasUp: false, reason: "transport shut down")
        }
        defer { state.withLockedValue { $0.dialsStarting -= 1 } }
        ClientBootstrap(group: connection.eventLoop)
            .connectTimeout(TimeAmount(config.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: config.waterMark)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.addTLS(to: channel, accepted: false)
                    let handler = ConnectionHandler(transport: self, connection: connection, role: .connector(peer))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: peer.host, port: peer.port)
            .whenFailure { error in
                self.connectionEnded(connection, wasUp: false, reason: "connect failed: \(error)")
            }
    }

    /// The delay before attempt `failures + 1`: `reconnectBase` doubled per failure, capped at
    /// `reconnectCap`, then scaled by a random factor in [0.5, 1] so peers do not redial in step.
    private func backoff(failures: Int) -> TimeAmount {
        let base = TimeAmount(config.reconnectBase).nanoseconds
        let cap = TimeAmount(config.reconnectCap).nanoseconds
        let exponential = base << min(max(failures - 1, 0), 30)
        let delay = exponential > 0 ? min(exponential, cap) : cap
        return .nanoseconds(Int64(Double(delay) * Double.random(in: 0.5...1.0)))
    }
}

extension EventLoop {
    /// Runs `body` on this loop: at once when called on it, otherwise as a task without a
    /// promise, which a loop that has shut down drops without leaking anything.
    func executeInLoop(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop { body() } else { execute(body) }
    }
}
