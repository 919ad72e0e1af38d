import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

/// A transport whose event loops shut down under it, before `shutdown()`, as when a program
/// stops its event loop group first.
final class LoopShutdownTests: XCTestCase {
    /// Persistent links ending as their loops close one by one set their redial timers from
    /// their own loop: nothing is scheduled from another thread on a loop that has already
    /// shut down (which drops the timer and, in debug builds, traps on its leaked promise).
    func testLoopsShuttingDownUnderLiveLinksEndThemQuietly() async throws {
        for round in 0..<5 {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
            var nodes: [TestNode] = []
            for index in 0..<3 {
                nodes.append(try await TestNode.start("l\(round)-\(index)", group: group) { config in
                    config.channelSettings[.default] = ChannelSettings(parallelism: 4)
                })
            }
            for node in nodes {
                for peer in nodes where peer !== node { node.transport.connect(to: peer.id) }
            }
            await waitUntil("every link is up") {
                nodes.allSatisfy { node in node.seenEvents.filter(\.isConnectionUp).count >= 2 }
            }
            try await group.shutdownGracefully()
            for node in nodes { try await Self.shutDownWithin(.seconds(10), node) }
        }
    }

    /// `shutdown()` after the group stopped returns: it waits only for closes that happened,
    /// and asks no loop that is gone to close anything.
    func testShutdownAfterTheGroupStoppedReturns() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let node = try await TestNode.start("after-group", group: group)
        try await group.shutdownGracefully()
        try await Self.shutDownWithin(.seconds(10), node)
    }

    /// Requests that open new connections while the transport shuts down, with the group
    /// shut down right after: every dial that got past `shutdown()`'s start has handed its
    /// connect to NIO before `shutdown()` returns, so none reaches a loop that is gone (which
    /// drops the connect and, in debug builds, traps on its leaked promise).
    func testDialsRacingShutdownAreDoneBeforeItReturns() async throws {
        for round in 0..<50 {
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
            let (caller, callee) = (try await TestNode.start("dc\(round)", group: group), try await TestNode.start("de\(round)", group: group))
            let transport = caller.transport
            let target = callee.id
            for lane in 0..<64 {
                Task.detached {
                    _ = try? await transport.request(.int(1), to: target, channel: ChannelName("lane\(lane)"), timeout: .seconds(1))
                }
            }
            try await Task.sleep(for: .microseconds(50 * (round % 10)))
            await caller.transport.shutdown()
            await callee.transport.shutdown()
            try await group.shutdownGracefully()
            caller.stopWatching()
            callee.stopWatching()
        }
    }

    /// Shuts `node`'s transport down, failing the test if that takes longer than `limit`.
    private static func shutDownWithin(_ limit: Duration, _ node: TestNode) async throws {
        let finished = NIOLockedValueBox(false)
        let transport = node.transport
        Task {
            await transport.shutdown()
            finished.withLockedValue { $0 = true }
        }
        await waitUntil("shutdown() of \(node.id) returns", timeout: limit) { finished.withLockedValue { $0 } }
        node.stopWatching()
    }
}
