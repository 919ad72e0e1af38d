/// Caps that bound what one hostile or broken peer can cost a node: each limit, when hit,
/// closes the offending connection only. `docs/limits.md` lists them with every other
/// transport limit.
public struct ConnectionLimits: Sendable, Equatable {
    /// Inbound connections accepted but not yet authenticated, from all hosts together.
    /// Connections over it are closed as soon as they are accepted.
    public var maxPendingHandshakes: Int
    /// Inbound connections accepted but not yet authenticated from one IP address, so that a
    /// flood from one host leaves handshake slots for the others.
    public var maxPendingHandshakesPerHost: Int
    /// Inbound connections open at once, authenticated or not; each costs a file descriptor.
    public var maxInboundConnections: Int
    /// The largest frame accepted before a connection is authenticated. Handshake messages
    /// are small; the cap keeps an unauthenticated peer from making the node buffer a full
    /// `maxFrameSize` frame. Must fit this node's metadata (tags and capabilities) on the
    /// nodes it connects to.
    public var maxHandshakeFrameSize: Int
    /// How long a frame may take from its first byte to its last, once it started arriving.
    /// A peer that starts a frame and stalls (or trickles it) is disconnected. A link must
    /// carry `maxFrameSize` bytes within this time, or the largest frames will fail on it.
    public var frameCompletionTimeout: Duration
    /// Bytes this node may have written to one connection that the peer has not read yet.
    /// Replies and membership traffic are queued whether or not the peer reads them, so a peer
    /// that sends requests and never reads the answers would otherwise grow the node's memory
    /// without bound; past this the connection is closed. Raised to at least
    /// `outboxHighWatermark` plus twice `maxFrameSize`, which application sends alone (they
    /// wait for room) can leave unsent.
    public var maxUnsentBytes: Int

    /// Every count is raised to at least 1, and the timeout to at least 1 ms.
    public init(
        maxPendingHandshakes: Int = 256,
        maxPendingHandshakesPerHost: Int = 128,
        maxInboundConnections: Int = 4096,
        maxHandshakeFrameSize: Int = 64 * 1024,
        frameCompletionTimeout: Duration = .seconds(30),
        maxUnsentBytes: Int = 64 * 1024 * 1024
    ) {
        self.maxPendingHandshakes = max(1, maxPendingHandshakes)
        self.maxPendingHandshakesPerHost = max(1, maxPendingHandshakesPerHost)
        self.maxInboundConnections = max(1, maxInboundConnections)
        self.maxHandshakeFrameSize = max(1, maxHandshakeFrameSize)
        self.frameCompletionTimeout = max(.milliseconds(1), frameCompletionTimeout)
        self.maxUnsentBytes = max(1, maxUnsentBytes)
    }
}
