import Dispatch
import NIOConcurrencyHelpers
import TrellisTransport
import TrellisWire

/// The processes of one capability served by a Swift `ProcessBehavior`.
///
/// The states live in 64 lock-striped dictionaries keyed by process id: a call locks one
/// stripe, activates the process if it has no state, runs the behavior on the state in place
/// and unlocks. Calls to one process therefore run one at a time, while calls to processes of
/// different stripes run in parallel on the event loops they arrived on. An idle process costs
/// its dictionary entry: the id, the state and a timestamp.
final class SwiftProcessHost<Behavior: ProcessBehavior>: ProcessHost {
    private struct Entry: Sendable {
        var state: Behavior.State
        var lastUsed: UInt64
    }

    private static var stripeCount: Int { 64 }

    let capability: String
    private let behavior: Behavior
    private let stripes: [NIOLockedValueBox<[ExactString: Entry]>]

    init(capability: String, behavior: Behavior) {
        self.capability = capability
        self.behavior = behavior
        self.stripes = (0..<Self.stripeCount).map { _ in NIOLockedValueBox([:]) }
    }

    private func stripe(of key: ExactString) -> NIOLockedValueBox<[ExactString: Entry]> {
        stripes[Int(UInt(bitPattern: key.hashValue) % UInt(Self.stripeCount))]
    }

    /// Runs the call on this thread, then hands its outcome to `reply`.
    func call(_ id: String, payload: Value, from: PeerID, reply: @escaping @Sendable (CallResult) -> Void) {
        let now = DispatchTime.now().uptimeNanoseconds
        let key = ExactString(id)
        reply(stripe(of: key).withLockedValue { table in
            do {
                if table[key] == nil { table[key] = Entry(state: try behavior.activate(id: id), lastUsed: now) }
                let answer = try behavior.handleCall(payload, state: &table[key]!.state, id: id, from: from)
                table[key]!.lastUsed = now
                return .success(answer)
            } catch {
                table[key] = nil
                return .failure(.processFailed(capability: capability, id: id, reason: "\(error)"))
            }
        })
    }

    func cast(_ id: String, payload: Value) {
        let now = DispatchTime.now().uptimeNanoseconds
        let key = ExactString(id)
        stripe(of: key).withLockedValue { table in
            do {
                if table[key] == nil { table[key] = Entry(state: try behavior.activate(id: id), lastUsed: now) }
                try behavior.handleCast(payload, state: &table[key]!.state, id: id)
                table[key]!.lastUsed = now
            } catch {
                table[key] = nil
            }
        }
    }

    func passivate(idleNanoseconds: UInt64, now: UInt64) async {
        for stripe in stripes {
            stripe.withLockedValue { table in
                table = table.filter { $0.value.lastUsed >= now || now - $0.value.lastUsed < idleNanoseconds }
            }
        }
    }

    func handOff(where moves: @escaping @Sendable (String) -> Bool) async -> [(id: String, state: Value?)] {
        var moved: [(id: String, state: Value?)] = []
        for stripe in stripes {
            stripe.withLockedValue { table in
                for (key, entry) in table where moves(key.text) {
                    moved.append((key.text, try? behavior.handOff(entry.state, id: key.text)))
                    table[key] = nil
                }
            }
        }
        return moved
    }

    func resume(_ id: String, from value: Value?, replacedLive: @escaping @Sendable () -> Void) {
        let now = DispatchTime.now().uptimeNanoseconds
        let key = ExactString(id)
        let replaced = stripe(of: key).withLockedValue { table in
            guard let state = try? value.map({ try behavior.resume(id: id, from: $0) }) else { return false }
            let wasLive = table[key] != nil
            table[key] = Entry(state: state, lastUsed: now)
            return wasLive
        }
        if replaced { replacedLive() }
    }

    var isEmpty: Bool { stripes.allSatisfy { $0.withLockedValue { $0.isEmpty } } }

    func activeCount() async -> Int {
        stripes.reduce(0) { $0 + $1.withLockedValue { $0.count } }
    }
}
