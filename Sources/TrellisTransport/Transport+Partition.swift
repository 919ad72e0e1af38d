import TrellisWire

/// Network partitions for fault injection: a node can be cut off from chosen peers and healed.
///
/// Each side enforces its own set, so a cut holds even when only one side asked for it: that
/// side closes the existing connections, fails its own dials and refuses the other's
/// handshakes. The check sits where connections start (`dial`, the acceptor's handshake) and
/// where application sends find their connection, so a connection either exists before a
/// `setUnreachable` (and is closed by it) or is refused after it: the set is updated, and the
/// connections to close are collected, under the same lock that registers connections.
extension Transport {
    /// Replaces the set of peers this node is partitioned from, and returns once the
    /// connections it cut have closed.
    ///
    /// For each peer in `peers`:
    /// - every existing connection to or from it, on every channel, is closed at once. Losing
    ///   our membership connection is reported as `TransportEvent.connectionDown` (or
    ///   `.connectFailed` while it was still connecting), exactly as a lost connection is;
    /// - dials to it fail at once with the reason "unreachable (partitioned)", reported as
    ///   `.connectFailed` on the membership channel; application sends to it throw
    ///   `TransportError.partitioned`;
    /// - its inbound handshakes are rejected (`.handshakeRejected`) and closed.
    ///
    /// Peers left out of `peers` can connect again: an empty set heals the node. Persistent
    /// links (`connect(to:)`) keep redialing with backoff throughout, so they come back on
    /// their own after a heal.
    public func setUnreachable(_ peers: Set<PeerID>) async {
        let (cut, previous): ([(Connection, PeerID)], Set<PeerID>) = state.withLockedValue { table in
            guard !table.isShutDown else { return ([], []) }
            let previous = table.unreachable
            table.unreachable = peers
            guard !peers.isEmpty else { return ([], previous) }
            let outbound = table.links.filter { peers.contains($0.key.peer) }.map { ($0.value.connection, $0.key.peer) }
            let inbound = table.inbound.values.compactMap { link in
                link.peer.flatMap { peers.contains($0) ? (link.connection, $0) : nil }
            }
            let closing = table.closing.values.filter { peers.contains($0.peer) }
            return (outbound + inbound + closing, previous)
        }
        if peers.isEmpty, !previous.isEmpty {
            logger.info("partition healed: connections to and from every peer allowed again")
        } else if peers != previous {
            logger.info("partitioned from \(peers.map(\.description).sorted())")
        }
        for (connection, peer) in cut {
            let reason = Self.partitionReason(peer)
            connection.close(reason: reason)
            // A connection with no socket now never gets one (`attach` refuses a closed
            // connection), so no handler will report its end: report it here. Otherwise the
            // handler reports it when the socket closes; `markEnded` makes either happen once.
            if !connection.isAttached { connectionEnded(connection, wasUp: false, reason: reason) }
        }
        for (connection, _) in cut { try? await connection.closeFuture?.get() }
    }

    /// The peers this node is partitioned from.
    public var unreachablePeers: Set<PeerID> {
        state.withLockedValue { $0.unreachable }
    }

    /// Whether this node is partitioned from `peer`.
    public func isUnreachable(_ peer: PeerID) -> Bool {
        state.withLockedValue { $0.isUnreachable(peer) }
    }

    /// Records the peer an inbound connection authenticated as; `false` (and the handshake
    /// must be refused) if this node is partitioned from it. Called on the connection's loop.
    func admitInbound(_ connection: Connection, from peer: PeerID, channel: ChannelName) -> Bool {
        state.withLockedValue { table in
            guard !table.isUnreachable(peer) else { return false }
            table.inbound[ObjectIdentifier(connection)]?.peer = peer
            table.inbound[ObjectIdentifier(connection)]?.channel = channel
            return true
        }
    }

    /// Why a connection to `peer` was cut or refused, as logs, events and errors say it.
    static func partitionReason(_ peer: PeerID) -> String {
        "unreachable (partitioned): this node is cut off from \(peer) by setUnreachable"
    }
}
