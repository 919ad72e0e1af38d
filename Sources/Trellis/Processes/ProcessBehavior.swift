import TrellisTransport
import TrellisWire

/// What a Swift process of one capability does: how it starts, answers calls and casts, and
/// moves to another node.
///
/// A process is a state and this behavior. It is activated on its first call or cast (lazy
/// activation) on the node that owns its shard, and lives there until it is passivated (idle
/// for longer than the capability's idle timeout) or its shard moves. Calls to one process run
/// one at a time, to completion, on the thread the request arrived on: keep them short and
/// never block in them. A callback that throws discards the process; its next call activates
/// it afresh, and other processes are untouched.
public protocol ProcessBehavior: Sendable {
    /// The state of one process.
    associatedtype State: Sendable

    /// The state of process `id` when it is first used.
    func activate(id: String) throws -> State

    /// Answers a call to process `id`.
    func handleCall(_ payload: Value, state: inout State, id: String, from: PeerID) throws -> Value

    /// Takes a cast (a one-way message) to process `id`. By default casts are ignored.
    func handleCast(_ payload: Value, state: inout State, id: String) throws

    /// The state as a value to carry to the shard's new owner, or nil to let it start afresh
    /// there. By default processes start afresh.
    func handOff(_ state: State, id: String) throws -> Value?

    /// The state of process `id` rebuilt on its new owner from `handOff`'s value. By default,
    /// `activate(id:)`.
    func resume(id: String, from value: Value) throws -> State
}

extension ProcessBehavior {
    public func handleCast(_ payload: Value, state: inout State, id: String) throws {}

    public func handOff(_ state: State, id: String) throws -> Value? { nil }

    public func resume(id: String, from value: Value) throws -> State { try activate(id: id) }
}

/// Why a call or cast to a process failed. Each description says what to do about it.
public enum ProcessError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No member of the cluster serves the capability (none registered it, or none is up).
    case noNodeHasCapability(String)
    /// The owner did not answer in time.
    case timeout(capability: String, id: String, owner: PeerID, Duration)
    /// The owner could not be reached and no other node took its shard before the call's
    /// timeout; or the connection to it closed while the call was on its way (the process may
    /// or may not have handled it); or the owner does not serve the capability.
    case ownerUnreachable(capability: String, id: String, owner: PeerID, reason: String)
    /// The process's callback failed; the process starts afresh on its next call.
    case processFailed(capability: String, id: String, reason: String)

    public var description: String {
        switch self {
        case .noNodeHasCapability(let capability):
            return "no node serves capability '\(capability)'; register it on some node (capabilities in the config, or node.serve) and wait until that node is a member"
        case .timeout(let capability, let id, let owner, let duration):
            return "process \(capability)/\(id) on \(owner) did not answer within \(duration); the owner may be overloaded or down: retry, or raise the timeout"
        case .ownerUnreachable(let capability, let id, let owner, let reason):
            return "owner \(owner) of process \(capability)/\(id) is unreachable (\(reason)); a call that could not be sent waits for the shard's next owner until its timeout: check that the cluster noticed the owner is gone, or raise the timeout"
        case .processFailed(let capability, let id, let reason):
            return "process \(capability)/\(id) failed: \(reason); it starts afresh on its next call"
        }
    }
}
