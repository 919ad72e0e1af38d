import TrellisTransport
import TrellisWire

/// Messaging: application traffic goes straight to the transport, never through the actor
/// or Lua.
extension TrellisNode {
    /// Broadcasts `value` to every node reachable through the overlay's members graph: each
    /// node delivers it once on `broadcasts` and relays it to its own members. Returns the
    /// message's sequence number at this node. Never waits: a relay whose connection queue is
    /// full skips that hop (other paths usually cover it).
    @discardableResult
    public nonisolated func broadcast(_ value: Value) -> Int64 { relay.broadcast(value) }

    /// Sends `value` to `peer` on `channel`; waits only while the connection's outbox is full.
    ///
    /// `key` picks the connection on a channel with several (same key, same connection, so
    /// order per key is kept) and, on a monotonic channel, lets a newer message with the same
    /// key replace this one while it is still queued. Runs on the caller's executor, and
    /// returns without suspending while the outbox has room.
    public nonisolated(nonsending) func send(
        _ value: Value, to peer: PeerID, channel: ChannelName = .default, key: String? = nil
    ) async throws(TransportError) {
        try await transport.send(value, to: peer, channel: channel, key: key)
    }

    /// Sends raw bytes to `peer` on `channel`; `key` as for `send(_:to:channel:key:)`.
    public nonisolated(nonsending) func send(
        bytes: [UInt8], to peer: PeerID, channel: ChannelName = .default, key: String? = nil
    ) async throws(TransportError) {
        try await transport.send(bytes: bytes, to: peer, channel: channel, key: key)
    }

    /// Sends a request and waits for the reply, at most `timeout`. Runs on the caller's executor.
    /// On a channel with several connections, `key` picks the connection as for `send`.
    public nonisolated(nonsending) func request(
        _ value: Value, to peer: PeerID, channel: ChannelName = .default, key: String? = nil, timeout: Duration = .seconds(5)
    ) async throws(TransportError) -> Value {
        try await transport.request(value, to: peer, channel: channel, key: key, timeout: timeout)
    }

    /// Runs `body` on the event loop of the connection to `peer` (the one `key` picks on a
    /// channel with several): requests it sends on that connection then complete without
    /// waking another thread, which is the lowest latency for request/response loops. A
    /// stream of sends to that peer runs there without waking the loop to write each batch,
    /// the least CPU per message on a machine with few cores. Keep `body` free of blocking
    /// work: it shares the loop with that connection's I/O.
    public nonisolated func withAffinity<Result: Sendable>(
        to peer: PeerID, channel: ChannelName = .default, key: String? = nil, _ body: @Sendable () async throws -> Result
    ) async rethrows -> Result {
        guard let loop = transport.eventLoop(for: peer, channel: channel, key: key) else { return try await body() }
        return try await withTaskExecutorPreference(EventLoopTaskExecutor(loop), operation: body)
    }

    /// Answers requests with `handler`, which runs on the connection's event loop: keep it
    /// short and non-blocking, or reply later through the `Responder`.
    public nonisolated func onRequest(_ handler: @escaping @Sendable (InboundMessage, Responder) -> Void) {
        requestHandlers.set(handler)
    }
}
