import NIOCore
import TrellisWire

/// A named stream of traffic to a peer; each channel has its own outbound TCP connection.
///
/// `.membership` always has a connection of its own, so application traffic on `.default`
/// (or any other channel) can never delay membership traffic.
public struct ChannelName: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The channel's name as it appears in the handshake.
    public let name: String
    /// The name's hash, computed once: every send looks its channel up in tables keyed by
    /// channel, and hashing the string each time showed in the profiles.
    private let nameHash: UInt64

    public init(_ name: String) {
        self.name = name
        self.nameHash = StableHash.hash64(name.utf8)
    }

    public init(stringLiteral value: String) { self.init(value) }

    public static func == (a: ChannelName, b: ChannelName) -> Bool { a.nameHash == b.nameHash && a.name == b.name }

    public func hash(into hasher: inout Hasher) { hasher.combine(nameHash) }

    public var description: String { name }

    /// Membership protocol traffic: gossip, heartbeats.
    public static let membership: ChannelName = "membership"
    /// Application traffic.
    public static let `default`: ChannelName = "default"
    /// The node's broadcasts, relayed from member to member.
    public static let broadcast: ChannelName = "broadcast"

    /// The name a connection of lane `lane` announces in its handshake: `name` for lane 0,
    /// `name#lane` for the others.
    func wireName(lane: Int) -> String { lane == 0 ? name : "\(name)#\(lane)" }

    /// The channel a handshake names, without its lane suffix.
    init(wireName: String) {
        if let hash = wireName.lastIndex(of: "#"), !wireName[wireName.index(after: hash)...].isEmpty,
           wireName[wireName.index(after: hash)...].allSatisfy(\.isASCII), Int(wireName[wireName.index(after: hash)...]) != nil {
            self.init(String(wireName[..<hash]))
        } else {
            self.init(wireName)
        }
    }
}

/// How a node carries one channel to each peer.
public struct ChannelSettings: Sendable, Equatable {
    /// TCP connections per peer for the channel. A message's key picks its connection, so
    /// messages with the same key stay in order; messages without a key take any connection.
    public var parallelism: Int
    /// Whether a queued message is dropped when a newer one with the same key is sent before
    /// it was written: receivers see the latest value per key, never a backlog of stale ones.
    public var monotonic: Bool

    public init(parallelism: Int = 1, monotonic: Bool = false) {
        self.parallelism = max(1, parallelism)
        self.monotonic = monotonic
    }

    /// Which of the channel's connections (0 up to `parallelism`) carries messages with `key`:
    /// the key's `StableHash` modulo `parallelism`, the same on every node and platform.
    public func connection(forKey key: String) -> Int {
        parallelism == 1 ? 0 : Int(StableHash.hash64(key.utf8) % UInt64(parallelism))
    }
}

/// What a node says about itself in the handshake.
public struct PeerMetadata: Sendable, Hashable {
    /// Free-form labels, e.g. `["zone": "a"]`.
    public var tags: [String: String]
    /// Features this node offers, e.g. `["lua"]`.
    public var capabilities: [String]

    public init(tags: [String: String] = [:], capabilities: [String] = []) {
        self.tags = tags
        self.capabilities = capabilities
    }
}

/// Control-plane events, delivered in order per connection on `Transport.events`.
public enum TransportEvent: Sendable {
    /// Our outbound membership connection to the peer completed its handshake.
    case connectionUp(PeerID, PeerMetadata)
    /// Our outbound membership connection closed (once per `connectionUp`); reconnection
    /// continues while `connect(to:)` is in force.
    case connectionDown(PeerID, reason: String)
    /// An attempt to open our outbound membership connection failed (refused, timed out, or
    /// the handshake was rejected).
    case connectFailed(PeerID, reason: String)
    /// A connected peer announced new tags or capabilities (`Transport.announce`).
    case metadataChanged(PeerID, PeerMetadata)
    /// A message arrived on an inbound membership connection.
    case membershipMessage(Value, from: PeerID)
    /// A pong answering our ping arrived.
    case heartbeatAck(from: PeerID)
    /// An inbound connection failed authentication, or came from a peer this node is
    /// partitioned from, and was closed.
    case handshakeRejected(remote: String, reason: String)
}

/// The body of an application message.
public enum Payload: Sendable, Hashable {
    /// A structured value, sent with `send(_:to:channel:)` or `request`.
    case value(Value)
    /// Raw bytes, sent with `send(bytes:to:channel:)`; a slice of the receive buffer, not a copy.
    case bytes(ByteBuffer)
}

/// A message received from a peer.
public struct InboundMessage: Sendable {
    /// The authenticated sender.
    public let from: PeerID
    /// The channel it arrived on.
    public let channel: ChannelName
    /// Its body.
    public let payload: Payload

    public init(from: PeerID, channel: ChannelName, payload: Payload) {
        self.from = from
        self.channel = channel
        self.payload = payload
    }
}

/// Answers one inbound request; call exactly one of `reply` or `fail`, from any thread.
///
/// The answer goes back on the connection the request came in on: the first of a burst at
/// once, the rest coalesced into one write (`Outbox.Flush.leading`).
public struct Responder: Sendable {
    let connection: Connection
    let id: UInt64

    /// Sends `value` as the reply.
    public func reply(_ value: Value) {
        let result = connection.outbox.enqueue(.never, flush: .leading) { FrameCodec.writeReply(id: id, value, into: &$0) }
        if case .tooLarge(let size) = result {
            fail("reply of \(size) bytes exceeds the peer's maximum frame size")
        }
    }

    /// Fails the request; the requester gets `TransportError.remoteFailure(message)`.
    public func fail(_ message: String) {
        _ = connection.outbox.enqueue(.never, flush: .leading) { FrameCodec.writeReplyError(id: id, message, into: &$0) }
    }
}
