import NIOCore
import XCTest

@testable import TrellisTransport

/// The spinners behind `BusyWait`: they poll while I/O keeps marking them, sleep once a
/// window passes without a mark, and the next mark wakes them.
final class BusyWaitTests: XCTestCase {
    private let window = UInt64(TimeAmount.milliseconds(200).nanoseconds)

    func testSpinnersPollWhileMarkedAndSleepOnceAWindowPassesWithoutAMark() throws {
        let spinners = BusyWaitSpinners()
        spinners.ensureRunning(2)
        spinners.ensureRunning(1)
        XCTAssertEqual(spinners.threads, 2, "ensureRunning starts threads only up to the count asked")
        try waitFor("both spinners to sleep before any I/O") { spinners.sleeping == 2 }

        spinners.mark(window: window)
        try waitFor("a mark to wake both spinners") { spinners.sleeping == 0 }
        let marking = ContinuousClock.now
        var previousMark = marking
        while ContinuousClock.now - marking < .milliseconds(400) {
            // A spinner may sleep only once a mark's window has passed, which a gap of
            // under 100 ms between two marks never lets happen (a stalled test thread could).
            if ContinuousClock.now - previousMark < .milliseconds(100) {
                XCTAssertEqual(spinners.sleeping, 0, "a spinner slept while marks kept coming")
            }
            spinners.mark(window: window)
            previousMark = ContinuousClock.now
            Thread.sleep(forTimeInterval: 0.005)
        }
        let lastMark = ContinuousClock.now
        try waitFor("both spinners to sleep once the window passed") { spinners.sleeping == 2 }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - lastMark, .milliseconds(150), "they slept before the window passed")

        spinners.mark(window: window)
        try waitFor("the next mark to wake them again") { spinners.sleeping == 0 }
    }

    func testBusyWaitIsOffByDefaultAndOffMeansNoSpinning() {
        XCTAssertFalse(TransportConfig(name: "n", clusterName: "c", cookie: "k").busyWait.isOn)
        XCTAssertNil(BusyWaitMark(.off))
        XCTAssertNil(BusyWaitMark(BusyWait(window: .microseconds(200), threads: 0)))
        XCTAssertNotNil(BusyWaitMark(.lowLatency))
    }

    private struct Timeout: Error, CustomStringConvertible {
        let what: String
        var description: String { "waited 5 s for \(what)" }
    }

    private func waitFor(_ what: String, _ condition: () -> Bool) throws {
        let start = ContinuousClock.now
        while !condition() {
            guard ContinuousClock.now - start < .seconds(5) else { throw Timeout(what: what) }
            Thread.sleep(forTimeInterval: 0.001)
        }
    }
}
