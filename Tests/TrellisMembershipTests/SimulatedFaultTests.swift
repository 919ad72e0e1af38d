import Foundation
import TrellisFaults
import TrellisLua
import TrellisSimulator
import TrellisWire
import XCTest

@testable import TrellisMembership

/// The simulator applies the same fault plans as a real node, to the membership messages and
/// heartbeat answers each node receives, and runs with them repeat for a seed.
final class SimulatedFaultTests: XCTestCase {
    let settings = MembershipSettings(heartbeatInterval: 200, failureTimeout: 1_000, defaultTickInterval: 1_000)
    let nodes = (1...12).map { PeerID(name: "n\($0)", host: "127.0.0.1", port: 7100 + $0) }

    func fullMesh(seed: UInt64 = 1) throws -> SimulatedCluster {
        let path = ShippedOverlayTests.overlays.appendingPathComponent("full_mesh.lua").path
        let cluster = SimulatedCluster(latency: 2, seed: seed)
        for (index, id) in nodes.enumerated() {
            cluster.addNode(id, strategy: try OverlayScript(contentsOf: path, seed: UInt64(index + 1)), config: .nil, settings: settings)
        }
        for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
        cluster.run(for: 500)
        return cluster
    }

    func testLosingEverythingFromOneNodeLooksLikeItsDeathUntilTheFaultEnds() throws {
        let cluster = try fullMesh()
        for node in nodes { XCTAssertEqual(cluster.members(of: node).count, 12) }
        try cluster.setFaults(FaultPlan(rules: [FaultRule(.drop, from: ["n12"], channel: "membership")]))
        cluster.run(for: settings.failureTimeout + 500)
        for node in nodes.dropLast() {
            XCTAssertFalse(cluster.members(of: node).contains(nodes[11]), "\(node) still counts n12 a member")
        }
        XCTAssertGreaterThan(cluster.faultCounts.dropped, 0)
        try cluster.setFaults(.none)
        cluster.join(nodes[11], through: nodes[0])
        cluster.run(for: 3_000)
        for node in nodes { XCTAssertEqual(cluster.members(of: node).count, 12, "\(node) after the fault ended") }
    }

    func testFaultsOnSomeReceiversOnlyAffectThem() throws {
        let cluster = try fullMesh()
        try cluster.setFaults(FaultPlan(rules: [FaultRule(.drop, from: ["n12"], channel: "membership")]), on: [nodes[0]])
        cluster.run(for: settings.failureTimeout + 500)
        XCTAssertFalse(cluster.members(of: nodes[0]).contains(nodes[11]))
        for node in nodes[1...] { XCTAssertTrue(cluster.members(of: node).contains(nodes[11]), "\(node) was not faulted") }
    }

    func testRunsWithProbabilisticFaultsAndAScriptRepeatForASeed() throws {
        let script = """
            local n = 0
            return { name = "every_seventh", version = 1, decide = function(from, to, channel, message)
              n = n + 1
              if n % 7 == 0 then return 30 end
            end }
            """
        let plan = FaultPlan(
            rules: [FaultRule(.drop, probability: 0.05), FaultRule(.duplicate, probability: 0.05), FaultRule(.reorder(window: 20), probability: 0.2)],
            script: .init(source: script, fileName: "every_seventh.lua"))
        func run(seed: UInt64) throws -> (UInt64, FaultCounts) {
            let cluster = try fullMesh(seed: seed)
            try cluster.setFaults(plan)
            cluster.run(for: 10_000)
            XCTAssertTrue(cluster.scriptFailures.isEmpty, "\(cluster.scriptFailures)")
            return (cluster.digest, cluster.faultCounts)
        }
        let (first, counts) = try run(seed: 5)
        let (again, countsAgain) = try run(seed: 5)
        XCTAssertEqual(first, again, "the same seed gives the same run")
        XCTAssertEqual(counts, countsAgain)
        XCTAssertGreaterThan(counts.dropped, 0)
        XCTAssertGreaterThan(counts.duplicated, 0)
        XCTAssertGreaterThan(counts.delayed, 0)
        XCTAssertEqual(counts.scriptErrors, 0)
    }
}
