import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import TrellisWire

/// One TCP connection's shared state: its outbox, its outstanding requests (outbound only)
/// and its NIO channel once there is one. Lives from the dial (or accept) until it ends.
final class Connection: Sendable {
    /// The peer dialed, for outbound connections; inbound ones learn it in the handshake.
    let peer: PeerID?
    /// The channel this connection carries, for outbound connections.
    let channelName: ChannelName?
    /// Which of the channel's parallel connections this is (0 for inbound ones).
    let lane: Int
    let eventLoop: any EventLoop
    let outbox: Outbox
    /// Requests sent on this connection; `nil` on inbound connections, which send none.
    let pending: PendingRequests?

    private struct State {
        var channel: (any Channel)?
        var closedReason: String?
        var ended = false
        /// Set by the first `closeAfterQueued`: later ones leave that close to finish.
        var closingAfterQueued = false
    }

    private let state = NIOLockedValueBox(State())
    private let refusing = Atomic<Bool>(false)

    init(outboundTo peer: PeerID, channel: ChannelName, lane: Int, eventLoop: any EventLoop, config: TransportConfig) {
        self.peer = peer
        self.channelName = channel
        self.lane = lane
        self.eventLoop = eventLoop
        self.outbox = Outbox(config)
        self.pending = PendingRequests(eventLoop: eventLoop, peer: peer)
    }

    init(inboundOn eventLoop: any EventLoop, config: TransportConfig) {
        self.peer = nil
        self.channelName = nil
        self.lane = 0
        self.eventLoop = eventLoop
        self.outbox = Outbox(config)
        self.pending = nil
    }

    /// Records the NIO channel; `false` if the connection was closed before it existed.
    func attach(_ channel: any Channel) -> Bool {
        state.withLockedValue { state in
            guard state.closedReason == nil else { return false }
            state.channel = channel
            return true
        }
    }

    /// Closes the connection: drops queued frames, fails outstanding requests (as never sent
    /// if the handshake had not completed) and those made on it from now on (as never sent),
    /// closes the socket.
    /// Returns the number of queued bytes dropped.
    @discardableResult
    func close(reason: String) -> Int {
        let channel: (any Channel)? = state.withLockedValue { state in
            if state.closedReason == nil { state.closedReason = reason }
            return state.channel
        }
        let dropped = outbox.close(reason: reason)
        if let peer {
            let neverSent = TransportError.peerUnreachable(peer, reason)
            pending?.failAll(outbox.hasOpened ? .connectionLost(peer, reason) : neverSent, later: neverSent)
        }
        channel?.close(promise: nil)
        return dropped
    }

    /// How long a connection being closed gracefully keeps reading, at most, for the replies to
    /// requests already sent on it.
    static var replyGracePeriod: TimeAmount { .seconds(5) }

    /// Closes the connection once the frames already queued are written, so that a goodbye
    /// queued just before still arrives, and once the requests already sent on it are answered
    /// (or `replyGracePeriod` has passed), so that a peer that is leaving can still reply to
    /// calls it took before it left. Later frames are refused. A connection that is not up yet
    /// closes at once. A second call (a disconnect, then the peer's go-away) changes nothing:
    /// the first one still waits for the replies.
    func closeAfterQueued(reason: String) {
        let (channel, alreadyClosing): ((any Channel)?, Bool) = state.withLockedValue { state in
            defer { state.closingAfterQueued = true }
            return (state.channel, state.closingAfterQueued)
        }
        guard !alreadyClosing else { return }
        guard let channel, let queued = outbox.seal(reason: reason) else {
            close(reason: reason)
            return
        }
        channel.eventLoop.execute {
            let written = queued.readableBytes > 0
                ? channel.writeAndFlush(queued) : channel.eventLoop.makeSucceededVoidFuture()
            written.whenComplete { _ in
                self.closeWhenAnswered(reason: reason, on: channel.eventLoop, deadline: .now() + Self.replyGracePeriod)
            }
        }
    }

    /// Closes once no request on this connection awaits a reply, checking every
    /// `PendingRequests.tick`, or at `deadline`.
    private func closeWhenAnswered(reason: String, on eventLoop: any EventLoop, deadline: NIODeadline) {
        guard let pending, !pending.isEmpty, NIODeadline.now() < deadline, closedReason == nil else {
            close(reason: reason)
            return
        }
        eventLoop.scheduleTask(in: PendingRequests.tick) {
            self.closeWhenAnswered(reason: reason, on: eventLoop, deadline: deadline)
        }
    }

    /// Whether requests arriving on this connection are refused as not handled: set when this
    /// node tells the peer it is going away.
    var refusesRequests: Bool { refusing.load(ordering: .relaxed) }

    /// Tells the peer that dialed this connection to send no more requests on it, and refuses
    /// (as not handled) those that arrive from now on.
    func goAway() {
        refusing.store(true, ordering: .relaxed)
        _ = outbox.enqueue(.never) { FrameCodec.writeEmpty(.goAway, into: &$0) }
    }

    /// Whether a socket was attached; once `close(reason:)` ran, this no longer changes.
    var isAttached: Bool { state.withLockedValue { $0.channel != nil } }

    /// Completes when the socket has closed; `nil` if there never was one.
    var closeFuture: EventLoopFuture<Void>? { state.withLockedValue { $0.channel?.closeFuture } }

    /// Why the connection was closed locally, if it was.
    var closedReason: String? { state.withLockedValue { $0.closedReason } }

    /// Whether the end of this connection was reported (its socket closed, or it never opened).
    var hasEnded: Bool { state.withLockedValue { $0.ended } }

    /// `true` exactly once: the caller reports the end of this connection.
    func markEnded() -> Bool {
        state.withLockedValue { state in
            defer { state.ended = true }
            return !state.ended
        }
    }
}
