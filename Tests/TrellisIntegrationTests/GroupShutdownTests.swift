import NIOConcurrencyHelpers
import NIOPosix
import Trellis
import TrellisTestSupport
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
        try await waitUntil("every stop() returns", within: .seconds(10)) { stopped.withLockedValue { $0 } == nodes.count }
    }
}
