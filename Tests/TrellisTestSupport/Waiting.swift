import XCTest
import Synchronization

/// Polls `condition` every 20 ms until it holds. After `limit`, fails the test at the caller's
/// line and throws, so the test stops there instead of going on with what it waited for.
public func waitUntil(
    _ what: String, within limit: Duration = .seconds(10), file: StaticString = #filePath, line: UInt = #line,
    _ condition: () async -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("timed out after \(limit) waiting until \(what)", file: file, line: line)
    throw CancellationError()
}

/// `body`'s result, or nil when it has none after `limit`.
///
/// Unlike a task group, which waits for every child before it returns, this returns at the
/// deadline even when `body` is stuck and ignores cancellation (an `await` on an actor that
/// never frees up): `body` is cancelled and left behind, so a hang fails one test instead of
/// stalling the whole suite.
public func result<T: Sendable>(within limit: Duration, of body: @escaping @Sendable () async -> T) async -> T? {
    let outcome = FirstOutcome<T>()
    return await withCheckedContinuation { continuation in
        outcome.register(continuation)
        let work = Task { await body() }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if outcome.settle(nil) { work.cancel() }
        }
        Task {
            let value = await work.value
            if outcome.settle(value) { timer.cancel() }
        }
    }
}

/// Resumes one continuation with the first outcome it is given.
private final class FirstOutcome<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T?, Never>?>(nil)

    /// The continuation to resume.
    func register(_ continuation: CheckedContinuation<T?, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Resumes the continuation with `value` unless an earlier outcome did; returns whether it did.
    func settle(_ value: T?) -> Bool {
        guard let continuation = continuation.withLock({ state in defer { state = nil }; return state }) else { return false }
        continuation.resume(returning: value)
        return true
    }
}
