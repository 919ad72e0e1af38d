import NIOPosix
@testable import Trellis
import TrellisTestSupport
import TrellisTransport
import TrellisWire
import XCTest

/// A node that leaves and comes back under its name (a restarted pod of a stateful set).
extension ProcessTests {
    /// Its peers take it for leaving only while it is: once back, serving again, it is waited
    /// for like any caller when a peer leaves, and every count survives both moves. (Before, a
    /// peer kept it in its leaving set for good, and left without waiting for its calls.)
    func testANodeBackUnderItsNameIsNoLongerTakenForLeaving() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes = try await startCounterCluster(3, group: group)
        let ids = (0..<30).map { "r\($0)" }
        for id in ids { _ = try await nodes[0].call("counter", id: id, .int(1)) }

        let port = nodes[2].id.port
        await nodes[2].leave()
        try await waitForAgreement(Array(nodes[0...1]), "counter", servers: 2)
        let leaving = await nodes[0].leavingPeers
        XCTAssertEqual(leaving, [nodes[2].id], "the leaver is taken for leaving while it leaves")

        var configuration = try NodeConfiguration(name: "p3", clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        configuration.port = port
        let back = try await TrellisNode.start(configuration, group: group)
        XCTAssertEqual(back.id, nodes[2].id, "the node came back under its own id")
        await back.serve("counter", with: CounterBehavior())
        await back.join(nodes[0].id)
        nodes[2] = back
        try await waitForAgreement(nodes, "counter", servers: 3)
        let stillLeaving = await nodes[0].leavingPeers
        XCTAssertEqual(stillLeaving, [], "a node back and serving is not leaving")

        for id in ids { _ = try await back.call("counter", id: id, .int(1)) }
        await nodes[0].leave()
        for id in ids {
            let count = try await back.call("counter", id: id, .int(0))
            XCTAssertEqual(count, .int(2), "both increments of \(id) survive the leave, the return and a second leave")
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}

/// What a node remembers of peers that left.
extension ProcessTests {
    /// A node forgets leavers that can no longer call it: its set of leaving peers stays as
    /// small as its connections, however many nodes left over its life. (Before, it kept
    /// every leaver's id for good.)
    func testLeaversThatCannotCallAnyMoreAreForgotten() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let node = try await TrellisNode.start(
            try NodeConfiguration(name: "l1", clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh), group: group)
        let leavers = (0..<50).map { PeerID(name: "gone\($0)", host: "127.0.0.1", port: 1) }
        for leaver in leavers {
            await node.handle(.metadataChanged(leaver, PeerMetadata(capabilities: ["counter"])))
            await node.handle(.metadataChanged(leaver, PeerMetadata()))
        }
        let leaving = await node.leavingPeers
        XCTAssertEqual(leaving, [leavers[49]], "only the latest leaver, which none of the others could outlive")
        await node.stop()
        try await group.shutdownGracefully()
    }
}
