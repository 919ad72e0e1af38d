import NIOPosix
import TrellisPlacement
import TrellisTestSupport
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

/// Calls that a node forwards to the owner its table names.
extension ProcessTests {
    /// A node forwards a call for as long as its caller still waits, not for a fixed time: the
    /// envelope carries the caller's remaining time. Here the forward's target holds the call
    /// for 2 s (its table names the forwarder), while the caller gives up after 300 ms; the
    /// forward ends with it. (Before, every forward waited up to 5 s, so this one waited the
    /// full 2 s, and a caller allowing more than 5 s saw a forwarded call time out at 5 s.)
    func testAForwardedCallKeepsItsCallersDeadline() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterNodes(try ["f1", "f2", "f3"].map { name in
            try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        }, group: group)
        for node in nodes { await node.freezePlacement() }
        let (caller, forwarder, holder) = (nodes[0], nodes[1], nodes[2])
        let shardCount = try XCTUnwrap(caller.shardTable(for: "counter")).shardCount
        let ownedBy = { (owner: TrellisNode) in ["counter": ShardTable(owners: Array(repeating: owner.id, count: shardCount))] }
        await caller.router.route(by: ownedBy(forwarder))
        await forwarder.router.route(by: ownedBy(holder))
        await holder.router.route(by: ownedBy(forwarder))
        let forwarding = await forwarder.router
        let start = ContinuousClock.now
        async let call = caller.call("counter", id: "x", .int(1), timeout: .milliseconds(300))
        try await waitUntil("the forwarder forwards the call", within: .seconds(1)) {
            forwarding.forwardsInFlight.load(ordering: .relaxed) == 1
        }
        do {
            _ = try await call
            XCTFail("the holder keeps the call for 2 s")
        } catch ProcessError.timeout {}
        try await waitUntil("the forward has ended", within: .seconds(5)) { forwarding.forwardsInFlight.load(ordering: .relaxed) == 0 }
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(1_500), "the forward ended with its caller's wait")
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
