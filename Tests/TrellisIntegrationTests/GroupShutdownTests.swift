import NIOConcurrencyHelpers
import NIOPosix
import Trellis
import XCTest

/// A program that shuts its event loop group down before its nodes.
final class GroupShutdownTests: XCTestCase {
    /// `stop()` still returns, promptly: the node does not wait for work of loops that are gone.
    func testNodesStopAfterTheirGroupShutDown() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(3, named: "gone", group: group)
        try await group.shutdownGracefully()
        let stopped = NIOLockedValueBox(0)
        for node in nodes {
            Task {
                await node.stop()
                stopped.withLockedValue { $0 += 1 }
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while stopped.withLockedValue({ $0 }) < nodes.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTAssertEqual(stopped.withLockedValue { $0 }, nodes.count, "every stop() returns within 10 s")
    }
}
