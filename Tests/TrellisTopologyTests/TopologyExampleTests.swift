import Foundation
import TrellisWire
import XCTest

@testable import TrellisTopology

/// Parses the shipped examples from a temporary copy of the repository layout with stub overlays.
final class TopologyExampleTests: XCTestCase {
    private var scratch: TopologyScratch!

    override func setUpWithError() throws {
        scratch = try TopologyScratch()
        try scratch.write("-- stub\n", to: "plugins/overlays/full_mesh.lua")
        try scratch.write("-- stub\n", to: "plugins/overlays/static.lua")
        try scratch.write("-- stub\n", to: "plugins/overlays/hyparview.lua")
        try scratch.write("-- stub\n", to: "plugins/overlays/client_server.lua")
        for script in ["actors/counter.lua", "actors/kv.lua", "placement/rendezvous.lua"] {
            try scratch.write("-- stub\n", to: "plugins/\(script)")
        }
    }

    private func loadExample(_ name: String) throws -> Topology {
        let examples = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/topologies")
        let text = try String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)
        let copy = try scratch.write(text, to: "examples/topologies/\(name)")
        return try Topology.load(path: copy)
    }

    func testQuickstart() throws {
        let topology = try loadExample("quickstart.toml")
        XCTAssertEqual(topology.name, "quickstart")
        XCTAssertEqual(topology.cluster, "quickstart")
        XCTAssertNil(topology.cookie)
        XCTAssertEqual(topology.overlayPath, scratch.path("plugins/overlays/full_mesh.lua"))
        XCTAssertEqual(topology.overlayConfig, .map([:]))
        XCTAssertEqual(topology.timeoutMs, 15_000)
        XCTAssertEqual(topology.host, "127.0.0.1")
        XCTAssertEqual(topology.nodes.map(\.name), ["n1", "n2", "n3", "n4", "n5"])
        XCTAssertEqual(topology.nodes.map(\.port), [0, 0, 0, 0, 0])
        XCTAssertEqual(topology.nodes[0].tags, ["zone": "a", "role": "seed"])
        XCTAssertEqual(topology.nodes[4].tags, ["zone": "a"])
        XCTAssertEqual(topology.join.strategy, .seed("n1"))
        XCTAssertEqual(topology.join.steps.map(\.joiner), ["n2", "n3", "n4", "n5"])
        XCTAssertEqual(Set(topology.join.steps.map(\.target)), ["n1"])
        XCTAssertEqual(topology.schedule, [ScheduledAction(atMs: 3_000, action: .leave, nodes: ["n5"])])
        XCTAssertEqual(topology.expectations, [
            Expectation(name: "all converge", kind: .members(count: 5), withinMs: 3_000, after: .start),
            Expectation(name: "survivors see four members", kind: .members(count: 4), withinMs: 10_000, after: .schedule),
            Expectation(name: "n5 is gone", kind: .absent(node: "n5"), withinMs: 10_000, after: .schedule),
        ])
    }

    func testStatic() throws {
        let topology = try loadExample("static.toml")
        XCTAssertEqual(topology.name, "static")
        XCTAssertEqual(topology.cluster, "static")
        XCTAssertEqual(topology.overlayPath, scratch.path("plugins/overlays/static.lua"))
        XCTAssertEqual(topology.overlayConfig, .map(["members": ["n1", "n2", "n3", "n4"]]))
        XCTAssertEqual(topology.nodes.map(\.name), ["n1", "n2", "n3", "n4"])
        XCTAssertEqual(topology.join, JoinPlan(strategy: .none, steps: [], delayMs: 0))
        XCTAssertEqual(topology.schedule, [])
        XCTAssertEqual(topology.expectations, [
            Expectation(name: "every live node sees 4 members", kind: .members(count: 4), withinMs: 10_000, after: .start)
        ])
    }

    func testHyParView() throws {
        let topology = try loadExample("hyparview-16.toml")
        XCTAssertEqual(topology.overlayPath, scratch.path("plugins/overlays/hyparview.lua"))
        XCTAssertEqual(topology.overlayConfig, .map(["active": 3, "passive": 12]))
        XCTAssertEqual(topology.nodes.count, 16)
        XCTAssertEqual(topology.schedule, [
            ScheduledAction(atMs: 8_000, action: .leave, nodes: ["n2"]),
            ScheduledAction(atMs: 9_000, action: .restart, nodes: ["n2"]),
            ScheduledAction(atMs: 12_000, action: .kill, nodes: ["n4", "n9", "n13"]),
        ])
        XCTAssertEqual(topology.expectations, [
            Expectation(name: "one connected overlay, symmetric views", kind: .connected(symmetric: true), withinMs: 8_000, after: .start),
            Expectation(name: "connected again without the killed nodes", kind: .connected(symmetric: false), withinMs: 22_000, after: .schedule),
        ])
    }

    func testClientServer() throws {
        let topology = try loadExample("client-server.toml")
        XCTAssertEqual(topology.nodes.map(\.name), ["s1", "s2", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"])
        XCTAssertEqual(topology.nodes[0].tags, ["role": "server"])
        XCTAssertEqual(topology.nodes[2].tags, ["role": "client"])
        XCTAssertEqual(topology.expectations.first?.kind, .members(count: 10, nodes: ["s1", "s2"]))
    }

    func testCapabilities() throws {
        let topology = try loadExample("capabilities.toml")
        XCTAssertEqual(topology.capabilities.map { URL(fileURLWithPath: $0.actorPath).lastPathComponent }, ["counter.lua", "kv.lua"])
        XCTAssertEqual(topology.capabilities[1].nodes, ["n1", "n2"])
        XCTAssertEqual(topology.workloads.map(\.capability), ["counter", "kv"])
        XCTAssertEqual(topology.workloads[0].equals, .int(20))
        XCTAssertEqual(topology.nodes.map(\.name), ["n1", "n2", "n3", "n4", "n5"])
    }

    func testHotSwap() throws {
        let topology = try loadExample("hot-swap.toml")
        XCTAssertEqual(topology.schedule.map(\.action), [.swap, .swap])
        XCTAssertEqual(topology.schedule.compactMap { $0.scriptPath.map { URL(fileURLWithPath: $0).lastPathComponent } }, ["hyparview.lua", "full_mesh.lua"])
    }

    func testLoadReportsUnreadableFile() {
        XCTAssertThrowsError(try Topology.load(path: scratch.path("missing.toml"))) { error in
            guard let error = error as? TopologyError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.kind, .unreadable)
            XCTAssertTrue(error.description.hasPrefix(scratch.path("missing.toml") + ": "), "\(error)")
        }
    }
}
