import TrellisWire

/// Why this node closed a connection, or refused a frame, on its own. The description is the
/// log line's reason, and says what to change when a legitimate peer runs into it.
enum ConnectionViolation: Error, CustomStringConvertible {
    /// Refused on accept: `limit` inbound connections are already handshaking.
    case tooManyPendingHandshakes(limit: Int)
    /// Refused on accept: `limit` inbound connections from `host` are already handshaking.
    case tooManyPendingHandshakesFromHost(String, limit: Int)
    /// Refused on accept: `limit` inbound connections are already open.
    case tooManyInboundConnections(limit: Int)
    /// The peer did not complete the handshake in time.
    case handshakeTimeout(Duration)
    /// A frame before the handshake completed was announced larger than allowed.
    case handshakeFrameTooLarge(length: Int, limit: Int)
    /// A frame started arriving and was not complete in time.
    case frameIncomplete(length: Int?, received: Int, timeout: Duration)
    /// A frame this kind of connection never carries: a protocol violation.
    case unexpectedFrame(kind: String, channel: ChannelName?, inbound: Bool)
    /// The peer left `unsent` bytes unread, more than `limit`.
    case peerNotReading(unsent: Int, limit: Int)
    /// A frame the connection's direction allows, but not on its channel; dropped.
    case frameNotAllowedOnChannel(kind: String, channel: ChannelName)

    var description: String {
        switch self {
        case .tooManyPendingHandshakes(let limit):
            return "refused: \(limit) inbound connections are already handshaking (maxPendingHandshakes); if legitimate peers are refused, raise it, otherwise a peer is flooding this node"
        case .tooManyPendingHandshakesFromHost(let host, let limit):
            return "refused: \(limit) inbound connections from \(host) are already handshaking (maxPendingHandshakesPerHost); if many nodes share that address, raise it, otherwise that host is flooding this node"
        case .tooManyInboundConnections(let limit):
            return "refused: \(limit) inbound connections are already open (maxInboundConnections); raise it (and the file-descriptor limit, ulimit -n) if the cluster needs more"
        case .handshakeTimeout(let timeout):
            return "handshake not completed within \(timeout) (handshakeTimeout); the peer is too slow, stalled, or not a Trellis node"
        case .handshakeFrameTooLarge(let length, let limit):
            return "handshake frame of \(length) bytes exceeds \(limit) (maxHandshakeFrameSize); raise it on every node if a node's metadata is this large, otherwise the peer is not a Trellis node"
        case .frameIncomplete(let length, let received, let timeout):
            let size = length.map { "a frame of \($0) bytes" } ?? "a frame"
            return "\(size) was not completed within \(timeout) (\(received) bytes received; frameCompletionTimeout); the peer stalled, or the link is slower than maxFrameSize per frameCompletionTimeout — raise the timeout for slow links"
        case .unexpectedFrame(let kind, let channel, let inbound):
            let on = channel.map { " on channel \($0)" } ?? ""
            let direction = inbound ? "an inbound" : "an outbound"
            return "unexpected \(kind) frame on \(direction) connection\(on): protocol violation; the peer is not a compatible Trellis node"
        case .peerNotReading(let unsent, let limit):
            return "the peer left \(unsent) bytes unread, more than \(limit) (maxUnsentBytes): it stopped reading, or sends requests faster than it reads the replies; raise the limit only for peers that read slowly on purpose"
        case .frameNotAllowedOnChannel(let kind, let channel):
            return "dropped a \(kind) frame on channel \(channel), which carries only membership messages and heartbeats; send application traffic on another channel"
        }
    }
}
