import NIOCore
import NIOPosix
import XCTest

@testable import TrellisTransport

/// `LoopActivity`: loops that had I/O within the window count as busy, each once, and a loop
/// whose thread ended is forgotten.
final class LoopActivityTests: XCTestCase {
    func testLoopsWithIOWithinTheWindowCountAsBusyEachOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        // A time far beyond every real loop's I/O, so that only these notes count.
        let later = NIODeadline.now().uptimeNanoseconds + 3_600_000_000_000
        let loops = Array(group.makeIterator())
        for loop in loops {
            try await loop.submit {
                LoopActivity.noteIO(now: later)
                LoopActivity.noteIO(now: later + 1_000)
            }.get()
        }
        XCTAssertEqual(LoopActivity.busyLoops(now: later + 1_000), 3, "each loop counts once")
        XCTAssertEqual(LoopActivity.isSaturated(now: later + 1_000), 3 > LoopActivity.maxBusyLoops)
        XCTAssertEqual(LoopActivity.busyLoops(now: later + LoopActivity.window + 1), 0, "the window passed")

        try await loops[0].submit { LoopActivity.noteIO(now: later + 2 * LoopActivity.window) }.get()
        XCTAssertEqual(LoopActivity.busyLoops(now: later + 2 * LoopActivity.window), 1, "only the loop with I/O since")
        try await group.shutdownGracefully()

        let survivor = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await survivor.next().submit { LoopActivity.noteIO(now: later + 2 * LoopActivity.window) }.get()
        XCTAssertEqual(LoopActivity.busyLoops(now: later + 2 * LoopActivity.window), 1, "the ended loops' records are dropped")
        try await survivor.shutdownGracefully()
    }

    func testLoopThreadsThatEndFreeTheirSlotsForTheNextOnes() async throws {
        var highWater = 0
        for round in 0..<5 {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
            for loop in group.makeIterator() {
                try await loop.submit { LoopActivity.noteIO(now: 1) }.get()
            }
            if round == 0 { highWater = LoopActivity.slotsInUse.load(ordering: .relaxed) }
            try await group.shutdownGracefully()
        }
        // Without reuse, the four later groups would take 12 more; other threads of the test
        // process may take one or two meanwhile.
        XCTAssertLessThanOrEqual(LoopActivity.slotsInUse.load(ordering: .relaxed) - highWater, 2, "later groups reuse the slots of ended loops")
    }
}
