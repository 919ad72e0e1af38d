import NIOConcurrencyHelpers
import Synchronization

/// Holds the calls and casts made on a node that was asked to join a cluster and has no
/// member yet.
///
/// Alone, a node owns every shard of what it serves, so it would activate processes that
/// already live on the cluster it is joining, and one id would live twice. The gate opens when
/// the first member comes up, or when `TrellisNode` gives up waiting (the node then serves
/// alone, as the first node of a cluster does). Open, it costs one atomic load per call.
final class JoinGate: Sendable {
    private let isClosed = Atomic<Bool>(false)
    private let waiting = NIOLockedValueBox<[UnsafeContinuation<Void, Never>]>([])

    /// Makes later `wait` calls wait until `open`.
    func close() {
        isClosed.store(true, ordering: .releasing)
    }

    /// Lets every waiting call through, and every later one.
    func open() {
        let released = waiting.withLockedValue { waiting in
            isClosed.store(false, ordering: .releasing)
            defer { waiting = [] }
            return waiting
        }
        for continuation in released { continuation.resume() }
    }

    /// Whether calls wait.
    var closed: Bool { isClosed.load(ordering: .acquiring) }

    /// Returns at once while open; otherwise once `open` is called.
    func wait() async {
        guard isClosed.load(ordering: .acquiring) else { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let passes = waiting.withLockedValue { waiting in
                guard isClosed.load(ordering: .acquiring) else { return true }
                waiting.append(continuation)
                return false
            }
            if passes { continuation.resume() }
        }
    }
}
