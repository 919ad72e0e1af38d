import Foundation
import TrellisTopology
import XCTest

/// `trellis sim`: the example topologies on the simulator, with the real scripts.
final class SimRunTests: XCTestCase {
    func run(_ file: String, seed: UInt64 = 1) throws -> SimReport {
        let topology = try Topology.load(path: TopologyRunTests.examples.appendingPathComponent(file).path)
        return try SimRunner(topology: topology, seed: seed).run()
    }

    func testEveryExampleHoldsOnTheSimulator() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: TopologyRunTests.examples.path).filter { $0.hasSuffix(".toml") }
        XCTAssertFalse(files.isEmpty)
        for file in files.sorted() {
            let report = try run(file)
            XCTAssertTrue(report.ok, "\(file):\n\(report.table())")
        }
    }

    func testScheduledFaultsChangeMembershipTrafficAndRepeatForASeed() throws {
        let report = try run("faults.toml", seed: 3)
        XCTAssertTrue(report.ok, report.table())
        let faults = try XCTUnwrap(report.faults)
        XCTAssertGreaterThan(faults.dropped, 0)
        XCTAssertGreaterThan(faults.delayed, 0)
        XCTAssertGreaterThan(faults.duplicated, 0)
        XCTAssertEqual(try run("faults.toml", seed: 3), report)
        XCTAssertNil(try run("quickstart.toml").faults, "no faults scheduled, none reported")
    }

    func testTheSameSeedGivesTheSameRun() throws {
        let first = try run("hyparview-16.toml", seed: 7)
        let again = try run("hyparview-16.toml", seed: 7)
        XCTAssertEqual(first, again)
        XCTAssertNotEqual(try run("hyparview-16.toml", seed: 8).digest, first.digest, "the seed must matter")
    }

    func testJSONCarriesTheDigest() throws {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run("quickstart.toml").json().utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["ok", "elapsed_ms", "nodes", "checks", "digest", "seed", "messages", "reports"])
    }

    func testProgressFollowsTheRunToItsEnd() throws {
        let topology = try Topology.load(path: TopologyRunTests.examples.appendingPathComponent("quickstart.toml").path)
        var seen: [SimProgress] = []
        let report = try SimRunner(topology: topology).run { seen.append($0) }
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(zip(seen, seen.dropFirst()).filter { $0.virtualMs >= $1.virtualMs }.count, 0, "virtual time only goes forward")
        let last = try XCTUnwrap(seen.last)
        XCTAssertEqual(last.virtualMs, report.elapsedMs)
        XCTAssertEqual(last.messages, report.messages)
        XCTAssertEqual(seen.first?.live, 5)
        XCTAssertEqual(last.live, 4, "n5 left")
        XCTAssertEqual(last.checksTotal, report.checks.count)
        XCTAssertEqual(last.checksPassed, report.checks.count, "every expectation held")
    }

    func testAPartitionSplitsTheOverlayAndTheHealJoinsIt() throws {
        let report = try run("hyparview-partition.toml")
        XCTAssertTrue(report.ok, report.table())
        let (during, after) = (report.reports[0], report.reports[1])
        XCTAssertEqual(during.largestComponent, 16, "each half is its own overlay: \(during)")
        XCTAssertEqual(during.broadcastReliability.mean, 0.5, accuracy: 1e-9)
        XCTAssertEqual(after.largestComponent, 32)
        XCTAssertEqual(after.asymmetricEdges, 0, "views are symmetric again: \(after)")
        XCTAssertEqual(after.broadcastReliability.min, 1)
    }

    func testKillingAFractionAndAddingNodesFollowTheSchedule() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let overlay = TopologyRunTests.examples.appendingPathComponent("../../plugins/overlays/hyparview.lua").standardizedFileURL.path
        let text = """
            name = "grow"
            overlay = "\(overlay)"
            timeout = "20s"
            [nodes]
            count = 40
            [join]
            delay = "10ms"
            [[schedule]]
            at = "5s"
            action = "kill"
            fraction = 0.25
            [[schedule]]
            at = "6s"
            action = "add"
            count = 10
            [[expect]]
            kind = "connected"
            within = "20s"
            after = "schedule"
            [[report]]
            at = "15s"
            """
        let path = folder.appendingPathComponent("grow.toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let topology = try Topology.load(path: path)
        XCTAssertEqual(topology.nodes.count, 50)
        XCTAssertEqual(topology.nodes.last?.addedAtMs, 6_000)
        let report = try SimRunner(topology: topology, seed: 3).run()
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(report.nodes.filter { $0.state == "killed" }.count, 10)
        XCTAssertEqual(report.reports.first?.live, 40)
        XCTAssertEqual(report.reports.first?.largestComponent, 40)
        XCTAssertEqual(report.reports.first?.broadcastReliability.min, 1)
        XCTAssertEqual(try SimRunner(topology: topology, seed: 3).run().digest, report.digest)
    }
}
