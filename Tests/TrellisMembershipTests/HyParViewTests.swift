import Foundation
import TrellisLua
import TrellisSimulator
import TrellisWire
import XCTest

@testable import TrellisMembership

/// `plugins/overlays/hyparview.lua` on the simulator: the classic overlay acceptance checks.
final class HyParViewTests: XCTestCase {
    let settings = MembershipSettings(heartbeatInterval: 200, failureTimeout: 1_000, defaultTickInterval: 1_000)

    func ids(_ count: Int) -> [PeerID] { (1...count).map { PeerID(name: "n\($0)", host: "10.0.0.1", port: 7000 + $0) } }

    /// `count` nodes, each joining through a random earlier one, run until the joins settle.
    func cluster(_ count: Int, active: Int = 5, seed: UInt64 = 1) throws -> (SimulatedCluster, [PeerID]) {
        let path = ShippedOverlayTests.overlays.appendingPathComponent("hyparview.lua").path
        let nodes = ids(count)
        let cluster = SimulatedCluster(latency: 2)
        let config = Value.map(["active": .int(Int64(active))])
        var random = SplitMix(seed)
        for (index, id) in nodes.enumerated() {
            cluster.addNode(id, strategy: try OverlayScript(contentsOf: path, seed: seed &* 1_000 &+ UInt64(index)), config: config, settings: settings)
            if index > 0 {
                cluster.join(id, through: nodes[Int(random.next() % UInt64(index))])
                cluster.run(for: 20)
            }
        }
        cluster.run(for: 10_000)
        XCTAssertTrue(cluster.scriptFailures.isEmpty, "\(cluster.scriptFailures.prefix(3))")
        return (cluster, nodes)
    }

    /// Each live node's active view, without itself.
    func views(_ cluster: SimulatedCluster) -> [PeerID: Set<PeerID>] {
        Dictionary(uniqueKeysWithValues: cluster.liveNodes.map { node in (node, Set(cluster.members(of: node)).subtracting([node])) })
    }

    func assertHealthy(_ cluster: SimulatedCluster, active: Int, file: StaticString = #filePath, line: UInt = #line) {
        let views = views(cluster)
        for (node, view) in views {
            XCTAssertFalse(view.isEmpty, "\(node) is isolated", file: file, line: line)
            XCTAssertLessThanOrEqual(view.count, active, "\(node) has \(view.count) active peers", file: file, line: line)
            for peer in view {
                XCTAssertNotNil(views[peer], "\(node) keeps \(peer), which is not live", file: file, line: line)
                XCTAssertTrue(views[peer]?.contains(node) ?? true, "\(node) → \(peer) is not symmetric", file: file, line: line)
            }
        }
        var reached: Set<PeerID> = []
        var frontier = Array(views.keys.prefix(1))
        while let next = frontier.popLast() {
            guard reached.insert(next).inserted else { continue }
            frontier += views[next] ?? []
        }
        XCTAssertEqual(reached.count, views.count, "the active views form \(reached.count)/\(views.count) of one component", file: file, line: line)
    }

    func testActiveViewsFormAConnectedSymmetricGraph() throws {
        for active in [5, 3] {
            for seed in UInt64(1)...3 {
                let (cluster, _) = try cluster(64, active: active, seed: seed)
                assertHealthy(cluster, active: active)
            }
        }
    }

    func testKilledNodesDisappearFromEveryViewAndTheRestHeals() throws {
        let (cluster, nodes) = try cluster(64)
        var random = SplitMix(7)
        let victims = Set((0..<13).map { _ in nodes[Int(random.next() % 64)] })
        for victim in victims { cluster.kill(victim) }
        cluster.run(for: 10_000)
        for (node, view) in views(cluster) {
            XCTAssertTrue(view.isDisjoint(with: victims), "\(node) still lists \(view.intersection(victims))")
        }
        assertHealthy(cluster, active: 5)
    }

    func testANodeThatLeavesAndRejoinsGetsBackIn() throws {
        let (cluster, nodes) = try cluster(32)
        let leaver = nodes[5]
        cluster.leave(leaver)
        cluster.run(for: 5_000)
        for (node, view) in views(cluster) where node != leaver {
            XCTAssertFalse(view.contains(leaver), "\(node) still lists the node that left")
        }
        cluster.join(leaver, through: nodes[20])
        cluster.run(for: 10_000)
        XCTAssertFalse(views(cluster)[leaver]?.isEmpty ?? true, "the node that rejoined has no active peers")
        assertHealthy(cluster, active: 5)
    }

    func testANodeWhoseJoinFailedAsksItsSeedAgain() throws {
        let path = ShippedOverlayTests.overlays.appendingPathComponent("hyparview.lua").path
        let nodes = ids(2)
        let cluster = SimulatedCluster(latency: 2)
        for (index, id) in nodes.enumerated() {
            cluster.addNode(id, strategy: try OverlayScript(contentsOf: path, seed: UInt64(index + 1)), config: .nil, settings: settings)
        }
        cluster.kill(nodes[0])
        cluster.join(nodes[1], through: nodes[0])
        cluster.run(for: 3_000)
        cluster.addNode(nodes[0], strategy: try OverlayScript(contentsOf: path, seed: 9), config: .nil, settings: settings)
        cluster.run(for: 3_000)
        XCTAssertEqual(cluster.members(of: nodes[1]), nodes.sorted())
        XCTAssertEqual(cluster.members(of: nodes[0]), nodes.sorted())
    }

    /// Both sides of a partition of eight nodes settle into closed groups of four (active
    /// views of 3, all full, each listing the others). Once the partition heals, only a node
    /// that sees its group is closed reaches across: with `refresh`, escalation and the retry
    /// of lost peers turned off here, nothing else would, and the two groups would stay apart.
    /// The partition lasts a minute: meanwhile the groups' requests across fail and back off,
    /// and what the groups know of the other side is not used up.
    func testClosedGroupsReachOutOnceAPartitionHeals() throws {
        let path = ShippedOverlayTests.overlays.appendingPathComponent("hyparview.lua").path
        let nodes = ids(8)
        let cluster = SimulatedCluster(latency: 2)
        let config = Value.map([
            "active": 3, "passive": 12, "refresh": 0, "escalate": 1_000, "lost": 0, "retry_min": 1_000_000, "retry_max": 1_000_000,
        ])
        for (index, id) in nodes.enumerated() {
            cluster.addNode(id, strategy: try OverlayScript(contentsOf: path, seed: UInt64(index + 1)), config: config, settings: settings)
            if index > 0 { cluster.join(id, through: nodes[0]) }
            cluster.run(for: 20)
        }
        cluster.run(for: 5_000)
        cluster.partition([Array(nodes[0..<4]), Array(nodes[4...])])
        cluster.run(for: 60_000)
        for node in nodes {
            let side = node.name < "n5" ? Set(nodes[0..<4]) : Set(nodes[4...])
            XCTAssertEqual(Set(cluster.members(of: node)), side, "\(node) is in a closed group of four")
        }
        cluster.heal()
        cluster.run(for: 15_000)
        assertHealthy(cluster, active: 3)
    }

    /// Swapping hyparview.lua for itself (a new version, or a new config) keeps its views
    /// instead of ranking the peers afresh; an active view over a smaller `active` sends its
    /// extra peers to the passive view.
    func testASwapToHyParViewKeepsTheViewsOfTheHyParViewItReplaces() throws {
        let path = ShippedOverlayTests.overlays.appendingPathComponent("hyparview.lua").path
        let me = PeerID(name: "me", host: "10.0.0.1", port: 7000)
        var (core, _) = MembershipCore.start(
            selfID: me, strategy: try OverlayScript(contentsOf: path, seed: 1), config: .map(["active": 4]), now: 0)
        let peers = ids(10)
        for peer in peers[..<4] { _ = core.handle(.message(.map(["type": "neighbor", "priority": "high"]), from: peer), now: 1) }
        let backups = Value.array(peers[4...].map { .string($0.description) })
        _ = core.handle(.message(.map(["type": "shuffle_reply", "nodes": backups]), from: peers[0]), now: 1)
        XCTAssertEqual(Set(core.members), Set(peers[..<4] + [me]))
        _ = try core.swap(to: try OverlayScript(contentsOf: path, seed: 2), config: .map(["active": 4]), now: 2)
        XCTAssertEqual(Set(core.members), Set(peers[..<4] + [me]), "the same config: the same neighbors")
        _ = try core.swap(to: try OverlayScript(contentsOf: path, seed: 3), config: .map(["active": 2]), now: 3)
        XCTAssertEqual(core.members.count, 3, "two neighbors kept: \(core.members)")
        XCTAssertTrue(Set(core.members).isSubset(of: Set(peers[..<4] + [me])), "\(core.members)")
    }

    func testRunsRepeat() throws {
        func snapshot() throws -> [[PeerID]] {
            let (cluster, nodes) = try cluster(24, seed: 42)
            cluster.kill(nodes[3])
            cluster.run(for: 3_000)
            return nodes.map { cluster.members(of: $0) }
        }
        XCTAssertEqual(try snapshot(), try snapshot())
    }
}

/// A small deterministic random generator for test plans.
struct SplitMix {
    private var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
