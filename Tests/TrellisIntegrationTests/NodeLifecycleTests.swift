import Foundation
import XCTest

/// `trellis node` as a service: SIGTERM leaves the cluster gracefully and exits 0, and the
/// settings of a real process come from flags, then `TRELLIS_*`, then the config file.
final class NodeLifecycleTests: XCTestCase {
    var processes: [NodeProcess] = []
    var folder: URL?

    override func tearDown() {
        for process in processes { process.stop() }
        processes = []
        if let folder { try? FileManager.default.removeItem(at: folder) }
    }

    private func start(_ arguments: [String], environment: [String: String] = [:]) throws -> NodeProcess {
        let process = try NodeProcess(arguments, environment: environment)
        processes.append(process)
        return process
    }

    /// SIGTERM, as a service manager or Kubernetes sends it: the node runs the overlay's
    /// `leave`, so the others see it go at once (not after the 10 s failure timeout), and it
    /// exits with status 0.
    func testSigtermLeavesGracefullyAndExitsZero() async throws {
        var nodes: [(process: NodeProcess, id: String)] = []
        for index in 1...3 {
            var arguments = ["--name", "t\(index)", "--overlay", NodeProcessTests.fullMesh, "--failure-timeout", "10s"]
            if let seed = nodes.first?.id { arguments += ["--seed", seed] }
            let process = try start(arguments)
            nodes.append((process, try await process.id()))
        }
        for (process, id) in nodes {
            let line = await process.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("members 3 ") }
            XCTAssertNotNil(line, "\(id) never saw 3 members: \(process.output)")
        }
        let marks = nodes.map { $0.process.output.count }
        let leaver = nodes[2]
        let sentAt = ContinuousClock.now
        leaver.process.signal(SIGTERM)
        for index in [0, 1] {
            let line = await nodes[index].process.waitForLine(timeout: .seconds(2), after: marks[index]) { $0 == "down \(leaver.id)" }
            XCTAssertNotNil(line, "\(nodes[index].id) did not see the leaving node go: \(nodes[index].process.output)")
        }
        XCTAssertLessThan(ContinuousClock.now - sentAt, .seconds(2))
        leaver.process.process.waitUntilExit()
        XCTAssertEqual(leaver.process.process.terminationReason, .exit)
        XCTAssertEqual(leaver.process.process.terminationStatus, 0)
        XCTAssertTrue(leaver.process.output.contains("leaving"), "\(leaver.process.output)")
    }

    /// One config file, overridden by `TRELLIS_NAME`, overridden in turn by `--name`; the
    /// file's relative overlay path is taken from the file's folder.
    func testFlagsOverrideTheEnvironmentWhichOverridesTheConfigFile() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-node-\(UUID().uuidString)")
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: URL(fileURLWithPath: NodeProcessTests.fullMesh), to: folder.appendingPathComponent("full_mesh.lua"))
        let file = folder.appendingPathComponent("node.toml")
        try """
            name = "from-file"
            listen = "127.0.0.1:0"
            overlay = "full_mesh.lua"
            failure_timeout = "3s"
            """.write(to: file, atomically: true, encoding: .utf8)

        let fromFile = try start(["--config", file.path])
        let fromEnvironment = try start([], environment: ["TRELLIS_CONFIG": file.path, "TRELLIS_NAME": "from-env"])
        let fromFlag = try start(["--config", file.path, "--name", "from-flag"], environment: ["TRELLIS_NAME": "from-env"])
        let ids = [try await fromFile.id(), try await fromEnvironment.id(), try await fromFlag.id()]
        XCTAssertEqual(ids.map { $0.split(separator: "@").first.map(String.init) }, ["from-file", "from-env", "from-flag"])
    }
}
