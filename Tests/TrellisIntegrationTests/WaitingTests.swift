import Dispatch
import TrellisTestSupport
import XCTest

/// The test suite's own guard against hangs.
final class WaitingTests: XCTestCase {
    /// A body that ignores cancellation and would take 3 s is left behind at the deadline.
    func testResultWithinReturnsAtTheDeadlineFromABodyThatIgnoresCancellation() async {
        let started = ContinuousClock.now
        let value = await result(within: .milliseconds(100)) { () async -> Int in
            await withCheckedContinuation { continuation in
                DispatchQueue.global().asyncAfter(deadline: .now() + 3) { continuation.resume() }
            }
            return 1
        }
        XCTAssertNil(value)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "it waited for the body")
    }

    func testResultWithinGivesABodysValue() async {
        let value = await result(within: .seconds(10)) { 42 }
        XCTAssertEqual(value, 42)
    }
}
