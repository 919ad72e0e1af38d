import Foundation
import TrellisWire
import XCTest

@testable import TrellisTopology

/// `placement`, `[[capabilities]]` and `[[workload]]` in topology files.
final class TopologyProcessTests: XCTestCase {
    private var scratch: TopologyScratch!

    override func setUpWithError() throws {
        scratch = try TopologyScratch()
        try scratch.write("-- stub actor\n", to: "counter.lua")
        try scratch.write("-- stub placement\n", to: "placement.lua")
    }

    func testCapabilitiesAndWorkloadsParse() throws {
        let topology = try scratch.parse(minimalTopology + """
            [[capabilities]]
            actor = "counter.lua"
            nodes = ["n1", "n2"]

            [[workload]]
            capability = "counter"
            ids = 10
            calls = 3
            from = "n2"
            spread = "2s"
            check = { op = "get" }
            equals = 3

            """)
        XCTAssertEqual(topology.capabilities, [CapabilitySpec(actorPath: scratch.path("counter.lua"), nodes: ["n1", "n2"])])
        let workload = try XCTUnwrap(topology.workloads.first)
        XCTAssertEqual(workload.name, "workload 1 (counter)")
        XCTAssertEqual([workload.ids, workload.calls, workload.spreadMs, workload.concurrency], [10, 3, 2_000, 16])
        XCTAssertEqual(workload.from, "n2")
        XCTAssertEqual(workload.payload, .map(["op": "add"]))
        XCTAssertEqual(workload.check, .map(["op": "get"]))
        XCTAssertEqual(workload.equals, .int(3))
        XCTAssertNil(topology.placementPath)
        let placed = try scratch.parse("placement = \"placement.lua\"\n" + minimalTopology)
        XCTAssertEqual(placed.placementPath, scratch.path("placement.lua"))
    }

    func testMistakesAreReportedWithTheirLine() {
        scratch.assertError(
            minimalTopology + "[[capabilities]]\nactor = \"missing.lua\"\n", .missingOverlay, line: 7, key: "capabilities[0].actor",
            "no script at")
        scratch.assertError(
            minimalTopology + "[[capabilities]]\nactor = \"counter.lua\"\nnodes = [\"n4\"]\n", .unknownNode, line: 8,
            key: "capabilities[0].nodes")
        scratch.assertError(minimalTopology + "[[workload]]\nids = 3\n", .missingKey, line: 6, key: "workload[0].capability")
        scratch.assertError(
            minimalTopology + "[[workload]]\ncapability = \"c\"\nids = 0\n", .invalidValue, line: 8, key: "workload[0].ids", "positive")
        scratch.assertError(
            minimalTopology + "[[workload]]\ncapability = \"c\"\nids = 2\ncheck = { op = \"get\" }\n", .missingKey, line: 6,
            key: "workload[0].equals", "go together")
        scratch.assertError(
            minimalTopology + "[[workload]]\ncapability = \"c\"\nids = 2\nfrom = \"n7\"\n", .unknownNode, line: 9, key: "workload[0].from")
    }
}
