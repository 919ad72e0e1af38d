import Foundation
import XCTest

/// `trellis node --config FILE` processes whose TLS and discovery are set only in the file.
final class NodeConfigFileTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The TLS test certificates of the transport tests (made by their `generate.sh`).
    static let certificates = repository.appendingPathComponent("Tests/TrellisTransportTests/Certificates")

    var folder: URL!
    var processes: [NodeProcess] = []

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-config-\(UUID().uuidString)")
        let certs = folder.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        for name in ["ca.pem", "node-a.pem", "node-a.key", "node-b.pem", "node-b.key"] {
            try FileManager.default.copyItem(
                at: Self.certificates.appendingPathComponent(name), to: certs.appendingPathComponent(name))
        }
    }

    override func tearDown() {
        for process in processes { process.stop() }
        processes = []
        try? FileManager.default.removeItem(at: folder)
    }

    /// Writes `name.toml` for a node on 127.0.0.1 with the full mesh overlay, plus `extra`
    /// keys, and starts `trellis node --config` on it, with nothing else on the command line
    /// and no `TRELLIS_*` variable but the cookie.
    func start(_ name: String, _ extra: String) throws -> NodeProcess {
        let overlay = Self.repository.appendingPathComponent("plugins/overlays/full_mesh.lua").path
        let path = folder.appendingPathComponent("\(name).toml")
        let text = "name = \"\(name)\"\nlisten = \"127.0.0.1:0\"\noverlay = \"\(overlay)\"\n" + extra
        try text.write(to: path, atomically: true, encoding: .utf8)
        let process = try NodeProcess(["--config", path.path])
        processes.append(process)
        return process
    }

    /// TLS keys with relative paths, taken from the config file's folder.
    func tls(_ node: String) -> String {
        "tls_cert = \"certs/\(node).pem\"\ntls_key = \"certs/\(node).key\"\ntls_ca = \"certs/ca.pem\"\n"
    }

    func testTwoNodesFormAClusterOverTLSThroughStaticDiscoveryFromTheirFiles() async throws {
        let first = try start("f1", tls("node-a"))
        let firstID = try await first.id()
        let discovery = "discovery = \"static:\(firstID)\"\ndiscovery_interval = \"200ms\"\n"
        let second = try start("f2", tls("node-b") + discovery)
        let plain = try start("plain", discovery)
        let secondID = try await second.id()
        let plainID = try await plain.id()

        for (process, id) in [(first, firstID), (second, secondID)] {
            let line = await process.waitForLine(timeout: .seconds(10)) { $0.hasPrefix("members 2 ") }
            XCTAssertNotNil(line, "\(id) never saw 2 members: \(process.output)")
        }
        for process in [second, plain] {
            XCTAssertTrue(process.output.contains("discovery static \(firstID)"), "\(process.output)")
        }
        // The plain node knows the cookie and polls for f1 every 200 ms, but speaks no TLS.
        try await Task.sleep(for: .seconds(1))
        XCTAssertFalse(first.output.contains("up \(plainID)"), "f1 admitted a node without TLS: \(first.output)")
        XCTAssertFalse(plain.output.contains { $0.hasPrefix("up ") }, "the plain node got in: \(plain.output)")
    }
}
