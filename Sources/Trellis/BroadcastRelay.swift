import NIOConcurrencyHelpers
import TrellisTransport
import TrellisWire

/// A message that reached this node by broadcast.
public struct BroadcastMessage: Sendable, Equatable {
    /// The node that broadcast it.
    public var origin: PeerID
    /// The origin's sequence number for it.
    public var sequence: Int64
    /// What was broadcast.
    public var payload: Value
}

/// Floods broadcasts over the overlay: each message goes to every current member but the one
/// it came from, and each node delivers and relays a message once, remembering the ids of the
/// last `seenCapacity` messages. Every node reachable through the members graph gets each
/// message once. Runs on the transport's event loops; Lua is not involved.
final class BroadcastRelay: Sendable {
    /// Messages that arrived by broadcast, each once.
    let delivered: AsyncStream<BroadcastMessage>

    private struct MessageID: Hashable {
        let origin: String
        let sequence: Int64
    }

    private struct State {
        var members: [PeerID] = []
        var nextSequence: Int64 = 1
        var seen: Set<MessageID> = []
        var seenOrder: [MessageID] = []
        var oldest = 0
        var dropped = 0
    }

    private let selfID: PeerID
    private let transport: Transport
    private let seenCapacity: Int
    private let state = NIOLockedValueBox(State())
    private let sink: AsyncStream<BroadcastMessage>.Continuation

    init(selfID: PeerID, transport: Transport, seenCapacity: Int = 65_536) {
        precondition(seenCapacity > 0, "the seen-set needs room for at least one id")
        self.selfID = selfID
        self.transport = transport
        self.seenCapacity = seenCapacity
        (delivered, sink) = AsyncStream.makeStream(of: BroadcastMessage.self)
    }

    /// Relays from now on to `members` (this node's overlay members).
    func setMembers(_ members: [PeerID]) {
        state.withLockedValue { $0.members = members.filter { $0 != selfID } }
    }

    /// Broadcasts `payload` from this node; returns its sequence number.
    @discardableResult
    func broadcast(_ payload: Value) -> Int64 {
        let (sequence, members): (Int64, [PeerID]) = state.withLockedValue { state in
            let sequence = state.nextSequence
            state.nextSequence += 1
            Self.remember(MessageID(origin: selfID.description, sequence: sequence), in: &state, capacity: seenCapacity)
            return (sequence, state.members)
        }
        relay(Self.envelope(origin: selfID.description, sequence: sequence, payload: payload), to: members, except: nil)
        return sequence
    }

    /// Handles one message that arrived on the broadcast channel.
    func receive(_ message: InboundMessage) {
        guard case .value(let envelope) = message.payload, let origin = envelope["o"]?.stringValue,
            let originID = try? PeerID(parsing: origin), case .int(let sequence)? = envelope["s"]
        else { return }
        let id = MessageID(origin: origin, sequence: sequence)
        let members: [PeerID]? = state.withLockedValue { state in
            guard !state.seen.contains(id) else { return nil }
            Self.remember(id, in: &state, capacity: seenCapacity)
            return state.members
        }
        guard let members else { return }
        sink.yield(BroadcastMessage(origin: originID, sequence: sequence, payload: envelope["p"] ?? .nil))
        relay(envelope, to: members, except: message.from)
    }

    /// Broadcast messages not relayed to some member because its queue was full.
    var droppedRelays: Int { state.withLockedValue { $0.dropped } }

    func finish() { sink.finish() }

    private func relay(_ envelope: Value, to members: [PeerID], except sender: PeerID?) {
        var dropped = 0
        for member in members where member != sender {
            if !transport.trySend(envelope, to: member, channel: .broadcast) { dropped += 1 }
        }
        if dropped > 0 { state.withLockedValue { $0.dropped += dropped } }
    }

    private static func envelope(origin: String, sequence: Int64, payload: Value) -> Value {
        .map(["o": .string(origin), "s": .int(sequence), "p": payload])
    }

    /// Adds `id` to the seen-set, forgetting the oldest id once `capacity` are held.
    private static func remember(_ id: MessageID, in state: inout State, capacity: Int) {
        state.seen.insert(id)
        if state.seenOrder.count < capacity {
            state.seenOrder.append(id)
        } else {
            state.seen.remove(state.seenOrder[state.oldest])
            state.seenOrder[state.oldest] = id
            state.oldest = (state.oldest + 1) % capacity
        }
    }
}
