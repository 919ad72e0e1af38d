import XCTest

@testable import Trellis

final class LogThrottleTests: XCTestCase {
    func testRepeatsAreHeldBackAndCounted() {
        var throttle = LogThrottle(interval: 1_000, capacity: 4)
        XCTAssertEqual(throttle.admit("a", now: 0), 0)
        XCTAssertNil(throttle.admit("a", now: 10))
        XCTAssertNil(throttle.admit("a", now: 999))
        XCTAssertEqual(throttle.admit("b", now: 999), 0, "another report is logged at once")
        XCTAssertEqual(throttle.admit("a", now: 1_000), 2, "two repeats were held back")
        XCTAssertNil(throttle.admit("a", now: 1_001))
    }

    func testForgetsOldReportsWhenFull() {
        var throttle = LogThrottle(interval: 100, capacity: 2)
        _ = throttle.admit("a", now: 0)
        _ = throttle.admit("b", now: 0)
        XCTAssertEqual(throttle.admit("c", now: 500), 0)
        XCTAssertEqual(throttle.admit("a", now: 500), 0, "a was forgotten, so it is new again")
    }
}
