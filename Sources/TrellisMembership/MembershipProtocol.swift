import TrellisLua
import TrellisWire

/// What happens to a node's membership: the input of `MembershipCore`.
public enum MembershipEvent: Sendable, Equatable {
    /// The application asks this node to join the cluster through `peer`.
    case join(PeerID)
    /// `peer` leaves; `leave(self)` is a graceful leave of this node.
    case leave(PeerID)
    /// A message arrived on the membership channel.
    case message(EncodedValue, from: PeerID)
    /// Our membership connection to `peer` completed its handshake.
    case connectionUp(PeerID)
    /// Our membership connection to `peer` was lost or could not be made.
    case connectionDown(PeerID, reason: String)
    /// `peer` answered a heartbeat.
    case heartbeatAck(from: PeerID)
    /// Time passed: run due ticks, heartbeats and failure checks.
    case timer
}

extension MembershipEvent {
    /// A message not encoded yet arrived (tests and tools build events this way).
    public static func message(_ value: Value, from peer: PeerID) -> MembershipEvent {
        .message(EncodedValue(value), from: peer)
    }
}

/// What the node must do: the output of `MembershipCore`, carried out by the NIO shell or the
/// simulator.
public enum MembershipDirective: Sendable, Equatable {
    /// Keep a connection to `peer` up (it became a member).
    case connect(PeerID)
    /// Drop the connections to `peer` (it is no longer a member).
    case disconnect(PeerID)
    /// Send `message` to `peer` on the membership channel.
    case send(EncodedValue, to: PeerID)
    /// Send a heartbeat to `peer`.
    case sendHeartbeat(to: PeerID)
    /// `peer` entered this node's member list.
    case memberUp(PeerID)
    /// `peer` left this node's member list.
    case memberDown(PeerID)
    /// A script callback failed; the previous state and members stay in force.
    case scriptFailed(ScriptError)
}

extension MembershipDirective {
    /// Send `value`, encoded, to `peer` (tests compare directives this way).
    public static func send(_ value: Value, to peer: PeerID) -> MembershipDirective {
        .send(EncodedValue(value), to: peer)
    }
}

/// Timing of the membership protocol, in milliseconds.
public struct MembershipSettings: Sendable, Equatable {
    /// How often a heartbeat is sent to each connected peer.
    public var heartbeatInterval: Int64
    /// Silence after which a connected peer is reported down to the overlay.
    public var failureTimeout: Int64
    /// How often `on_tick` runs when the script names no `tick`.
    public var defaultTickInterval: Int64
    /// How long a connection opened only to send to a non-member stays open after the last
    /// message sent on it.
    public var idleConnectionTimeout: Int64

    public init(
        heartbeatInterval: Int64 = 300, failureTimeout: Int64 = 2_000, defaultTickInterval: Int64 = 1_000,
        idleConnectionTimeout: Int64 = 10_000
    ) {
        self.heartbeatInterval = heartbeatInterval
        self.failureTimeout = failureTimeout
        self.defaultTickInterval = defaultTickInterval
        self.idleConnectionTimeout = idleConnectionTimeout
    }
}

/// The overlay script as the membership core sees it. `OverlayScript` (a Lua script) is the
/// implementation; tests may provide others.
public protocol OverlayStrategy: AnyObject {
    /// The script's file name, for error reports.
    var fileName: String { get }
    /// Milliseconds between `on_tick` calls, when the script chose.
    var tickInterval: Int? { get }
    func start(_ ctx: OverlayContext) throws(ScriptError) -> [String]?
    func join(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome
    func leave(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome
    func receive(_ message: EncodedValue, from peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome
    func tick(now: Int64) throws(ScriptError) -> OverlayOutcome
    func connectionUp(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome
    func connectionDown(_ peer: String, reason: String, now: Int64) throws(ScriptError) -> OverlayOutcome
    /// The script's `version`.
    var version: Int64 { get }
    /// The state, to carry over when the script is replaced.
    func exportState() throws(ScriptError) -> Value
    /// Takes over from a replaced script (`migrate`, or `init`); returns the members it gave.
    func migrate(from oldState: Value, oldVersion: Int64, context: OverlayContext) throws(ScriptError) -> [String]?
}

extension OverlayStrategy {
    public var version: Int64 { 0 }
    public func exportState() throws(ScriptError) -> Value { .nil }
    public func migrate(from oldState: Value, oldVersion: Int64, context: OverlayContext) throws(ScriptError) -> [String]? {
        try start(context)
    }
}

extension OverlayScript: OverlayStrategy {}
