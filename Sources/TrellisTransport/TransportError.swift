import TrellisWire

/// Why a send or request failed. Each description says what to do about it.
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No reply arrived within the timeout.
    case timeout(PeerID, Duration)
    /// The message was not sent: the connection to the peer could not be made, or it had
    /// closed before the message was queued. Trying again (once the peer is back, or with
    /// another peer) cannot make the peer handle it twice.
    case peerUnreachable(PeerID, String)
    /// The connection closed after the request was queued on it and before its reply came:
    /// the peer may or may not have handled the request.
    case connectionLost(PeerID, String)
    /// The peer's request handler failed the request with this message.
    case remoteFailure(String)
    /// The message's encoding is larger than the maximum frame size.
    case messageTooLarge(size: Int, limit: Int)
    /// This node was told to cut itself off from the peer (`Transport.setUnreachable`).
    case partitioned(PeerID)
    /// The transport has been shut down.
    case shutDown

    public var description: String {
        switch self {
        case .timeout(let peer, let duration):
            return "no reply from \(peer) within \(duration); the peer may be overloaded or down — retry, or raise the timeout"
        case .peerUnreachable(let peer, let reason):
            return "peer \(peer) is unreachable (\(reason)); check that it is running and shares the cluster name and cookie, then retry"
        case .connectionLost(let peer, let reason):
            return "the connection to \(peer) closed (\(reason)) before the reply came: the peer may or may not have handled the request — retry only if handling it twice is harmless"
        case .remoteFailure(let message):
            return "the peer's request handler failed: \(message); see the peer's log"
        case .messageTooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the maximum frame size of \(limit); split it or raise maxFrameSize on every node"
        case .partitioned(let peer):
            return "peer \(peer) is unreachable (partitioned): this node was cut off from it with setUnreachable; call setUnreachable without it to heal"
        case .shutDown:
            return "the transport has been shut down; start a new one to communicate again"
        }
    }
}
