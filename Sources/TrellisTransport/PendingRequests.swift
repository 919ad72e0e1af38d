import NIOConcurrencyHelpers
import NIOCore
import TrellisWire

/// Requests awaiting replies on one outbound connection, keyed by request id.
///
/// Replies resume the caller's continuation directly on the event loop. Timeouts are checked
/// by one sweep every `tick` while requests are outstanding, instead of a timer per request:
/// a request times out between `timeout` and `timeout + tick` after it was sent.
final class PendingRequests: Sendable {
    typealias Continuation = UnsafeContinuation<Result<Value, TransportError>, Never>

    private struct Entry {
        let continuation: Continuation
        let deadline: NIODeadline
        let timeout: Duration
    }

    private struct State {
        var nextID: UInt64 = 1
        var entries: [UInt64: Entry] = [:]
        var sweeping = false
        var failure: TransportError?
    }

    private let state = NIOLockedValueBox(State())
    private let eventLoop: any EventLoop
    private let peer: PeerID
    static let tick = TimeAmount.milliseconds(10)

    init(eventLoop: any EventLoop, peer: PeerID) {
        self.eventLoop = eventLoop
        self.peer = peer
    }

    /// A registered request: its id, and whether other requests on the connection were
    /// awaiting their replies already.
    struct Registration {
        let id: UInt64
        let othersOutstanding: Bool
    }

    /// Registers a request, or fails it as never sent once the connection has closed.
    func register(_ continuation: Continuation, timeout: Duration) -> Result<Registration, TransportError> {
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let (result, startSweep): (Result<Registration, TransportError>, Bool) = state.withLockedValue { state in
            if let failure = state.failure { return (.failure(failure), false) }
            let id = state.nextID
            state.nextID &+= 1
            let othersOutstanding = !state.entries.isEmpty
            state.entries[id] = Entry(continuation: continuation, deadline: deadline, timeout: timeout)
            let startSweep = !state.sweeping
            state.sweeping = true
            return (.success(Registration(id: id, othersOutstanding: othersOutstanding)), startSweep)
        }
        if startSweep { scheduleSweep() }
        return result
    }

    /// Whether no request awaits its reply.
    var isEmpty: Bool { state.withLockedValue { $0.entries.isEmpty } }

    /// Completes request `id` with `result`; ignored if it already timed out.
    func complete(_ id: UInt64, _ result: Result<Value, TransportError>) {
        let entry = state.withLockedValue { $0.entries.removeValue(forKey: id) }
        entry?.continuation.resume(returning: result)
    }

    /// Fails every outstanding request with `error`, and every later one with `later`.
    ///
    /// A later request was never sent, whatever happened to the ones before it: its caller
    /// must be able to tell that it is safe to send again (`peerUnreachable`), even while the
    /// closed connection is still the one senders find for its peer.
    func failAll(_ error: TransportError, later: TransportError) {
        let entries = state.withLockedValue { state in
            if state.failure == nil { state.failure = later }
            defer { state.entries = [:] }
            return state.entries
        }
        for entry in entries.values { entry.continuation.resume(returning: .failure(error)) }
    }

    private func scheduleSweep() {
        eventLoop.executeInLoop { self.eventLoop.scheduleTask(in: Self.tick) { self.sweep() } }
    }

    private func sweep() {
        let now = NIODeadline.now()
        let (expired, again): ([Entry], Bool) = state.withLockedValue { state in
            var expired: [Entry] = []
            for (id, entry) in state.entries where entry.deadline <= now {
                expired.append(entry)
                state.entries[id] = nil
            }
            state.sweeping = !state.entries.isEmpty
            return (expired, state.sweeping)
        }
        for entry in expired { entry.continuation.resume(returning: .failure(.timeout(peer, entry.timeout))) }
        if again { scheduleSweep() }
    }
}
