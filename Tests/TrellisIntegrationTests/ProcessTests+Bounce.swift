import NIOPosix
import TrellisPlacement
import TrellisWire
import XCTest

@testable import Trellis

/// Calls between two nodes whose tables name each other as a shard's owner.
extension ProcessTests {
    /// The caller's table is behind: it names the other node the owner, whose table names the
    /// caller. The other node holds the call until a new table settles it, instead of sending
    /// it back until a node serves it on a fresh process; the call then reaches the process
    /// where it lives. (Before, it was served on the other node, where it started afresh.)
    func testACallBetweenTwoTablesThatNameEachOtherKeepsItsProcess() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterNodes(try ["b1", "b2"].map { name in
            try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        }, group: group)
        for node in nodes { await node.freezePlacement() }
        let (caller, other) = (nodes[0], nodes[1])
        let (callerRouter, otherRouter) = (await caller.router, await other.router)
        let shardCount = try XCTUnwrap(caller.shardTable(for: "counter")).shardCount
        let ownedBy = { (owner: TrellisNode) in ["counter": ShardTable(owners: Array(repeating: owner.id, count: shardCount))] }
        otherRouter.route(by: ownedBy(caller))
        callerRouter.route(by: ownedBy(caller))
        for _ in 0..<5 { _ = try await caller.call("counter", id: "x", .int(1)) }

        callerRouter.route(by: ownedBy(other))
        async let bounced = caller.call("counter", id: "x", .int(1))
        try await Task.sleep(for: .milliseconds(200))
        callerRouter.route(by: ownedBy(caller))
        let count = try await bounced
        XCTAssertEqual(count, .int(6), "the call reached the process that has the five increments before it")
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}

extension TrellisNode {
    /// Stops this node's tables from following membership, so that a test sets them.
    func freezePlacement() { placementFrozen = true }
}

extension ProcessRouter {
    /// Routes by `tables` from now on, as a rebalance does, but moves no process.
    func route(by tables: [String: ShardTable]) {
        _ = swapTables(tables)
        book.withLockedValue { $0.adopted = [] }
    }
}
