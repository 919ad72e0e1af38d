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
        XCTAssertTrue(EventLoopPoller.mayPoll(busyLoops: EventLoopPoller.maxBusyLoops))
        XCTAssertFalse(EventLoopPoller.mayPoll(busyLoops: EventLoopPoller.maxBusyLoops + 1))
        XCTAssertEqual(EventLoopPoller.maxBusyLoops, max(1, System.coreCount / 2))
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

    /// Only b busy-waits, so its loop is the process's only busy loop (as with one node per
    /// process), which always may poll. Requests arrive every millisecond for 300 ms.
    func testALoopPollsBetweenRequestsAndSleepsOnceTheWindowPassesWithoutIO() async throws {
        let window = Duration.seconds(1)
        let a = try await TestNode.start("a", group: groups[0])
        let b = try await TestNode.start("b", group: groups[1]) { $0.busyWait = BusyWait(window: window) }
        defer { Task { await a.shutdown(); await b.shutdown() } }
        _ = try await a.transport.request(.int(0), to: b.id, timeout: .seconds(5))
        // A polling loop stays on its CPU (its yields return at once on an idle CPU); a
        // sleeping one uses next to none. Read from the thread's schedstat, without disturbing it.
        let thread = try await groups[1].next().submit { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self") }.get()

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
        let loop = groups[1].next()
        let delays = NIOLockedValueBox<[(polling: Bool, delay: Duration)]>([])
        // Only b busy-waits (its loop is the process's only busy loop). Its handler runs as the
        // request is read: the loop starts polling, then the handler queues a task behind it.
        let a = try await TestNode.start("a", group: groups[0])
        let b = try await TestNode.start("b", group: groups[1], configure: { $0.busyWait = BusyWait(window: window) }) { message, responder in
            guard case .value(let value) = message.payload else { return }
            responder.reply(value)
            let queued = ContinuousClock.now
            loop.execute {
                let entry = (EventLoopPoller.isPollingOnThisThread, ContinuousClock.now - queued)
                delays.withLockedValue { $0.append(entry) }
            }
        }
        defer { Task { await a.shutdown(); await b.shutdown() } }
        for i in 0..<5 {
            _ = try await a.transport.request(.int(Int64(i)), to: b.id, timeout: .seconds(5))
            try await Task.sleep(for: .milliseconds(10))
        }
        await waitUntil("the tasks to run") { delays.withLockedValue { $0.count } == 5 }
        let recorded = delays.withLockedValue { $0 }
        XCTAssertTrue(recorded.contains { $0.polling }, "the loop was not polling when the tasks ran")
        for entry in recorded {
            XCTAssertLessThan(entry.delay, window / 4, "a task waited behind the polling for its window")
        }
    }

    func testALoopThatIsPollingShutsDownWithinItsWindow() async throws {
        let window = Duration.seconds(1)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await TestNode.start("a", group: groups[0])
        let b = try await TestNode.start("b", group: group) { $0.busyWait = BusyWait(window: window) }
        _ = try await a.transport.request(.int(1), to: b.id, timeout: .seconds(5))
        let polling = try await group.next().submit { EventLoopPoller.isPollingOnThisThread }.get()
        XCTAssertTrue(polling, "the loop polls after the request")
        b.stopWatching()
        let start = ContinuousClock.now
        try await group.shutdownGracefully()
        XCTAssertLessThan(ContinuousClock.now - start, window * 3, "the loop kept polling while it was shut down")
        await a.shutdown()
    }

    /// The CPU time the thread at `thread` (its `/proc/thread-self` link, "pid/task/tid") has
    /// used, from its schedstat.
    private func onCPU(_ thread: String) throws -> Duration {
        let stat = try String(contentsOfFile: "/proc/\(thread)/schedstat", encoding: .utf8)
        return .nanoseconds(Int64(stat.split(separator: " ")[0]) ?? 0)
    }

    #endif
}
