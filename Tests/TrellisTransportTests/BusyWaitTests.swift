import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import TrellisTransport

/// `BusyWait`: after I/O an event loop polls its epoll instance instead of sleeping, until the
/// window passes without I/O, and tasks queued meanwhile still run at once.
final class BusyWaitTests: XCTestCase {
    private let groups = [MultiThreadedEventLoopGroup(numberOfThreads: 1), MultiThreadedEventLoopGroup(numberOfThreads: 1)]

    override func tearDown() async throws {
        for group in groups { try await group.shutdownGracefully() }
    }

    func testBusyWaitIsOffByDefaultAndOffMeansNoPolling() {
        XCTAssertFalse(TransportConfig(name: "n", clusterName: "c", cookie: "k").busyWait.isOn)
        XCTAssertNil(BusyWaitMark(.off))
        XCTAssertNil(BusyWaitMark(BusyWait(window: .zero)))
        XCTAssertNotNil(BusyWaitMark(.lowLatency))
    }

    func testLoopsPollOnlyWhileAtMostHalfTheCPUsWorthOfLoopsAreBusy() {
        XCTAssertTrue(EventLoopPoller.mayPoll(busyLoops: 1), "one busy loop always may poll")
        XCTAssertTrue(EventLoopPoller.mayPoll(busyLoops: LoopActivity.maxBusyLoops))
        XCTAssertFalse(EventLoopPoller.mayPoll(busyLoops: LoopActivity.maxBusyLoops + 1))
        XCTAssertEqual(LoopActivity.maxBusyLoops, max(1, System.coreCount / 2))
    }

    #if os(Linux)
    func testAnEpollDescriptorIsFoundOnlyForASocketThatExists() {
        let nowhere = try! SocketAddress(ipAddress: "127.0.0.1", port: 1)
        let elsewhere = try! SocketAddress(ipAddress: "127.0.0.1", port: 2)
        XCTAssertNil(SelectorDescriptor.epoll(watchingSocketFrom: nowhere, to: elsewhere))
    }

    func testEachLoopFindsItsOwnEpollInstance() async throws {
        let a = try await TestNode.start("a", group: groups[0]) { $0.busyWait = .lowLatency }
        let b = try await TestNode.start("b", group: groups[1]) { $0.busyWait = .lowLatency }
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = try await a.transport.request(.int(0), to: b.id, timeout: .seconds(5))
        var selectors: [CInt?] = []
        for group in groups { selectors.append(try await group.next().submit { EventLoopPoller.selectorOnThisThread }.get()) }
        for selector in selectors {
            let descriptor = try XCTUnwrap(selector, "a loop with a connection and busy waiting on has a poller")
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor)"), "anon_inode:[eventpoll]")
        }
        XCTAssertNotEqual(selectors[0], selectors[1])
    }

    /// Both nodes on one loop, the process's only busy one (as with one node per process),
    /// which always may poll. Requests arrive every millisecond for 300 ms.
    func testALoopPollsBetweenRequestsAndSleepsOnceTheWindowPassesWithoutIO() async throws {
        let window = Duration.seconds(1)
        try await Self.waitUntilNoLoopIsBusy(within: window)
        let (a, b) = try await pairOnOneLoop(busyWait: BusyWait(window: window))
        defer { Task { await a.shutdown(); await b.shutdown() } }
        // A polling loop stays on its CPU (its yields return at once on an idle CPU); a
        // sleeping one uses next to none. Read from the thread's schedstat, without disturbing it.
        let thread = try await groups[0].next().submit { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self") }.get()

        let before = try onCPU(thread)
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(300) {
            _ = try await a.transport.request(.int(1), to: b.id, timeout: .seconds(5))
            try await Task.sleep(for: .milliseconds(1))
        }
        let lastIO = ContinuousClock.now
        let busy = try onCPU(thread) - before
        XCTAssertGreaterThan(busy, (lastIO - start) / 3, "the loop slept between requests")

        try await Task.sleep(until: lastIO + window + .milliseconds(300))
        let quiet = try onCPU(thread)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertLessThan(try onCPU(thread) - quiet, .milliseconds(30), "the loop still polled after its window")
    }

    func testATaskTheLoopQueuesWhilePollingRunsLongBeforeTheWindowPasses() async throws {
        let window = Duration.seconds(2)
        try await Self.waitUntilNoLoopIsBusy(within: window)
        let (a, b) = try await pairOnOneLoop(busyWait: BusyWait(window: window))
        defer { Task { await a.shutdown(); await b.shutdown() } }
        let loop = groups[0].next()
        try await Self.settle()
        // As a read does: the loop starts polling, then a task is queued behind the polling task.
        let (polling, delay) = try await loop.flatSubmit {
            Self.noteIO(window: Self.nanoseconds(window))
            let promise = loop.makePromise(of: (Bool, Duration).self)
            let queued = ContinuousClock.now
            loop.execute { promise.succeed((EventLoopPoller.isPollingOnThisThread, ContinuousClock.now - queued)) }
            return promise.futureResult
        }.get()
        XCTAssertTrue(polling, "the loop was not polling when the task ran")
        XCTAssertLessThan(delay, window / 4, "the task waited behind the polling for its window")
    }

    func testALoopThatIsPollingShutsDownWithinItsWindow() async throws {
        let window = Duration.seconds(1)
        try await Self.waitUntilNoLoopIsBusy(within: window)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await TestNode.start("a", group: group) { $0.busyWait = BusyWait(window: window) }
        let b = try await TestNode.start("b", group: group) { $0.busyWait = BusyWait(window: window) }
        _ = try await a.transport.request(.int(1), to: b.id, timeout: .seconds(5))
        try await Self.settle()
        let polling = try await group.next().submit {
            Self.noteIO(window: Self.nanoseconds(window))
            return EventLoopPoller.isPollingOnThisThread
        }.get()
        XCTAssertTrue(polling, "the loop polls after I/O")
        a.stopWatching()
        b.stopWatching()
        let start = ContinuousClock.now
        try await group.shutdownGracefully()
        XCTAssertLessThan(ContinuousClock.now - start, window * 3, "the loop kept polling while it was shut down")
    }

    /// Waits until no loop of this process had I/O within `window`: loops of nodes that an
    /// earlier test left running (heartbeats) count as busy, and then no loop may poll.
    private static func waitUntilNoLoopIsBusy(within window: Duration) async throws {
        let start = ContinuousClock.now
        while LoopActivity.busyLoops(now: NIODeadline.now().uptimeNanoseconds, window: nanoseconds(window)) > 0 {
            guard ContinuousClock.now - start < window * 5 else {
                return XCTFail("other loops of this process keep having I/O (nodes an earlier test left running?)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Waits until the loops' timers of the last request have fired (a timer firing ends a
    /// polling session as any ready descriptor does).
    private static func settle() async throws { try await Task.sleep(for: .milliseconds(50)) }

    /// `duration` in nanoseconds, as a connection's busy-wait window counts it.
    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        UInt64(duration.components.seconds) * 1_000_000_000 + UInt64(duration.components.attoseconds / 1_000_000_000)
    }

    /// On a loop, as a read or a flush does: notes I/O and keeps the loop polling for `window` ns.
    private static func noteIO(window: UInt64) {
        let now = NIODeadline.now().uptimeNanoseconds
        LoopActivity.noteIO(now: now)
        EventLoopPoller.noteIO(now: now, window: window)
    }

    /// Two nodes on the first group's only loop, connected by a first request.
    private func pairOnOneLoop(busyWait: BusyWait) async throws -> (TestNode, TestNode) {
        let a = try await TestNode.start("a", group: groups[0]) { $0.busyWait = busyWait }
        let b = try await TestNode.start("b", group: groups[0]) { $0.busyWait = busyWait }
        _ = try await a.transport.request(.int(0), to: b.id, timeout: .seconds(5))
        return (a, b)
    }

    /// The CPU time the thread at `thread` (its `/proc/thread-self` link, "pid/task/tid") has
    /// used, from its schedstat.
    private func onCPU(_ thread: String) throws -> Duration {
        let stat = try String(contentsOfFile: "/proc/\(thread)/schedstat", encoding: .utf8)
        return .nanoseconds(Int64(stat.split(separator: " ")[0]) ?? 0)
    }

    #endif
}
