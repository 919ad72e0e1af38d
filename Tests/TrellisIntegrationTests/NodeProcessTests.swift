import Foundation
import XCTest

/// Separate `trellis node` OS processes on 127.0.0.1 forming a full mesh, then faults.
final class NodeProcessTests: XCTestCase {
    static let fullMesh = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays/full_mesh.lua").path

    let failureTimeoutMs = 1_000
    var processes: [NodeProcess] = []

    override func tearDown() {
        for process in processes { process.stop() }
        processes = []
    }

    /// Starts three nodes, the second and third joining through the first, and waits until
    /// each sees three members.
    func startCluster() async throws -> [(process: NodeProcess, id: String)] {
        var nodes: [(NodeProcess, String)] = []
        for index in 1...3 {
            var arguments = [
                "--name", "p\(index)", "--overlay", Self.fullMesh, "--failure-timeout", "\(failureTimeoutMs)",
            ]
            if let seed = nodes.first?.1 { arguments += ["--seed", seed] }
            let process = try NodeProcess(arguments)
            processes.append(process)
            nodes.append((process, try await process.id()))
        }
        for (process, id) in nodes {
            let line = await process.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("members 3 ") }
            XCTAssertNotNil(line, "\(id) never saw 3 members: \(process.output)")
        }
        return nodes
    }

    /// The kernel closes a killed node's sockets, so survivors see it down long before the
    /// failure timeout; the bound allows the timeout plus scheduling slack on a loaded machine.
    func testSigkillIsSeenAsDownWithinTheFailureTimeout() async throws {
        let nodes = try await startCluster()
        let victim = nodes[2]
        let marks = nodes.map { $0.process.output.count }
        let allowance = Duration.milliseconds(failureTimeoutMs + 1_000)
        let killedAt = ContinuousClock.now
        victim.process.signal(SIGKILL)
        for (index, survivor) in nodes.prefix(2).enumerated() {
            let line = await survivor.process.waitForLine(timeout: allowance, after: marks[index]) { $0 == "down \(victim.id)" }
            XCTAssertNotNil(line, "\(survivor.id) did not see \(victim.id) down in time: \(survivor.process.output)")
        }
        XCTAssertLessThan(ContinuousClock.now - killedAt, allowance)
    }

    func testSigstopIsSeenWithinTheHeartbeatTimeoutAndSigcontRejoins() async throws {
        let nodes = try await startCluster()
        let frozen = nodes[1]
        var marks = nodes.map { $0.process.output.count }
        frozen.process.signal(SIGSTOP)
        let allowance = Duration.milliseconds(failureTimeoutMs + 1_000)
        for index in [0, 2] {
            let line = await nodes[index].process.waitForLine(timeout: allowance, after: marks[index]) { $0 == "down \(frozen.id)" }
            XCTAssertNotNil(line, "\(nodes[index].id) did not see the stopped node down: \(nodes[index].process.output)")
        }
        marks = nodes.map { $0.process.output.count }
        frozen.process.signal(SIGCONT)
        for index in [0, 2] {
            let line = await nodes[index].process.waitForLine(timeout: .seconds(10), after: marks[index]) { $0 == "up \(frozen.id)" }
            XCTAssertNotNil(line, "\(nodes[index].id) did not see the node come back: \(nodes[index].process.output)")
        }
        let rejoined = await frozen.process.waitForLine(timeout: .seconds(10), after: marks[1]) { $0.hasPrefix("members 3 ") }
        XCTAssertNotNil(rejoined, "the resumed node did not see everyone again: \(frozen.process.output)")
    }

    func testCtrlCLeavesGracefully() async throws {
        let nodes = try await startCluster()
        let marks = nodes.map { $0.process.output.count }
        nodes[2].process.signal(SIGINT)
        for index in [0, 1] {
            let line = await nodes[index].process.waitForLine(timeout: .seconds(2), after: marks[index]) { $0 == "down \(nodes[2].id)" }
            XCTAssertNotNil(line, "\(nodes[index].id) did not see the leaving node go: \(nodes[index].process.output)")
        }
        nodes[2].process.process.waitUntilExit()
        XCTAssertEqual(nodes[2].process.process.terminationStatus, 0)
    }

    func testANodeWithTheWrongCookieNeverGetsIn() async throws {
        let nodes = try await startCluster()
        let stranger = try NodeProcess(
            ["--name", "stranger", "--overlay", Self.fullMesh, "--seed", nodes[0].id], cookie: "not-the-cookie"
        )
        processes.append(stranger)
        let strangerID = try await stranger.id()
        try await Task.sleep(for: .seconds(2))
        for node in nodes {
            XCTAssertFalse(node.process.output.contains("up \(strangerID)"), "\(node.id) admitted a node with the wrong cookie")
        }
        XCTAssertFalse(stranger.output.contains { $0.hasPrefix("up ") }, "the stranger saw a member: \(stranger.output)")
    }
}
