import XCTest

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
