import Foundation
import NIOPosix
import TrellisTestSupport
import TrellisTopology
import XCTest

/// `trellis up` in-process: real nodes, real Lua, real TCP on 127.0.0.1.
final class TopologyRunTests: XCTestCase {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/topologies")

    func run(_ file: String) async throws -> UpReport {
        let topology = try Topology.load(path: Self.examples.appendingPathComponent(file).path)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        // A run stops at its topology's timeout: a minute past it, something hangs.
        let limit = Duration.milliseconds(topology.timeoutMs) + .seconds(60)
        let outcome = await result(within: limit) { () async -> Result<UpReport, TopologyRunError> in
            do throws(TopologyRunError) {
                return .success(try await UpRunner(topology: topology, group: group).run())
            } catch {
                return .failure(error)
            }
        }
        guard let outcome else {
            XCTFail("\(file) did not stop within \(limit)")
            _ = await result(within: .seconds(10)) { try? await group.shutdownGracefully() }
            throw CancellationError()
        }
        try await group.shutdownGracefully()
        return try outcome.get()
    }

    func testQuickstartConvergesAndALeavingNodeDisappearsFromEveryView() async throws {
        let report = try await run("quickstart.toml")
        XCTAssertTrue(report.ok, report.table())
        let left = try XCTUnwrap(report.nodes.first { $0.state == "left" })
        for node in report.nodes where node.state == "running" {
            XCTAssertEqual(node.members.count, 4, report.table())
            XCTAssertFalse(node.members.contains(left.id), report.table())
            XCTAssertEqual(node.scriptErrors, 0)
        }
    }

    func testHyParViewStaysOneOverlayWhenNodesAreKilled() async throws {
        let report = try await run("hyparview-16.toml")
        XCTAssertTrue(report.ok, report.table())
        for node in report.nodes where node.state == "running" {
            XCTAssertLessThanOrEqual(node.members.count, 4, "active view of 3 plus self: \(report.table())")
            XCTAssertEqual(node.scriptErrors, 0)
        }
    }

    func testSixtyFourHyParViewNodesHealAfterAFifthIsKilled() async throws {
        let report = try await run("hyparview-64.toml")
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(report.nodes.filter { $0.state == "killed" }.count, 13, report.table())
        for node in report.nodes where node.state == "running" { XCTAssertEqual(node.scriptErrors, 0) }
    }

    func testAHealedPartitionBecomesOneOverlayAgain() async throws {
        let report = try await run("hyparview-partition.toml")
        XCTAssertTrue(report.ok, report.table())
    }

    func testClientServerServersSeeEveryoneClientsSeeServers() async throws {
        let report = try await run("client-server.toml")
        XCTAssertTrue(report.ok, report.table())
    }

    func testCountersSurviveAJoinAndALeaveFromTheCommandLine() async throws {
        let report = try await run("capabilities.toml")
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(report.checks.count, 3, report.table())
    }

    func testAClusterSwapsToHyParViewAndBackWhileRunning() async throws {
        let report = try await run("hot-swap.toml")
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(report.events.count, 32, report.table())
        XCTAssertTrue(report.events.allSatisfy { !$0.contains("refused") }, report.table())
    }

    /// n1 to n4 lose everything n8 sends them, so they drop it while the fault lasts; once
    /// the schedule ends the faults, the mesh is whole again. (The random losses the same
    /// schedule adds may cost one of them another peer for a while, so it may see fewer than 7.)
    func testScheduledFaultsCutTheLinksTheyNameAndEnd() async throws {
        let report = try await run("faults.toml")
        XCTAssertTrue(report.ok, report.table())
        XCTAssertEqual(report.events.count, 16, report.table())
        for name in ["n1", "n2", "n3", "n4"] {
            let withoutN8 = (1...7).map { "\(name) at 8000 ms, seeing \($0) members: no faults" }
            XCTAssertTrue(report.events.contains { withoutN8.contains($0) }, report.table())
        }
        XCTAssertFalse(report.events.contains { $0.contains("refused") }, report.table())
    }

    func testStaticMembersFormTheCluster() async throws {
        let report = try await run("static.toml")
        XCTAssertTrue(report.ok, report.table())
    }

    func testJSONReportHasTheDocumentedShape() async throws {
        let report = try await run("static.toml")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["ok", "elapsed_ms", "nodes", "checks", "events"])
        let node = (object["nodes"] as? [[String: Any]])?.first
        XCTAssertNotNil(node?["id"] as? String)
        XCTAssertNotNil(node?["members"] as? [String])
        XCTAssertNotNil(node?["script_errors"] as? Int)
        let check = (object["checks"] as? [[String: Any]])?.first
        XCTAssertNotNil(check?["name"] as? String)
        XCTAssertNotNil(check?["ok"] as? Bool)
        XCTAssertNotNil(check?["detail"] as? String)
    }
}
