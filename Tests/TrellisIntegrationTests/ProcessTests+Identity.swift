import NIOPosix
import Trellis
import TrellisWire
import XCTest

extension ProcessTests {
    /// "é" as one code point and "e" with a combining accent are equal Swift strings but
    /// different bytes: different ids for Lua and for placement, so different processes, even
    /// on the node that hosts both.
    func testIdsThatDifferInTheirBytesAreDifferentProcesses() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCluster(1, group: group)
        let node = nodes[0]
        await node.serve("swift-counter", with: CounterBehavior())
        let actor = try await node.serveActor(contentsOf: Self.counterActor)
        XCTAssertEqual(actor, "counter")
        try await waitForAgreement(nodes, "swift-counter", servers: 1)
        try await waitForAgreement(nodes, "counter", servers: 1)
        let (composed, decomposed) = ("caf\u{E9}", "cafe\u{301}")
        XCTAssertEqual(composed, decomposed, "Swift takes them for one string")

        _ = try await node.call("swift-counter", id: composed, .int(1))
        let swiftDecomposed = try await node.call("swift-counter", id: decomposed, .int(10))
        let swiftComposed = try await node.call("swift-counter", id: composed, .int(0))
        XCTAssertEqual([swiftComposed, swiftDecomposed], [.int(1), .int(10)])

        _ = try await node.call("counter", id: composed, .map(["op": "add", "by": 1]))
        _ = try await node.call("counter", id: decomposed, .map(["op": "add", "by": 10]))
        let luaComposed = try await node.call("counter", id: composed, .map(["op": "get"]))
        let luaDecomposed = try await node.call("counter", id: decomposed, .map(["op": "get"]))
        XCTAssertEqual([luaComposed, luaDecomposed], [.int(1), .int(10)])
        await node.stop()
        try await group.shutdownGracefully()
    }
}
