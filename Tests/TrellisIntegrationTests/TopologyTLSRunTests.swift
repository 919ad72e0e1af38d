import Foundation
import NIOPosix
import TrellisTopology
import XCTest

/// `trellis up` in-process with a topology's `[tls]` table: every node runs mutual TLS with
/// the transport tests' certificates.
final class TopologyTLSRunTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs a three-node full mesh whose `[tls]` names `node`'s certificate and key and `ca`,
    /// with paths relative to the topology file, which sits next to the certificates.
    func run(node: String, ca: String) async throws -> UpReport {
        let overlay = Self.repository.appendingPathComponent("plugins/overlays/full_mesh.lua").path
        let certificates = Self.repository.appendingPathComponent("Tests/TrellisTransportTests/Certificates")
        let text = """
            name = "tls"
            overlay = "\(overlay)"
            timeout = "10s"

            [nodes]
            count = 3

            [tls]
            cert = "\(node).pem"
            key = "\(node).key"
            ca = "\(ca).pem"

            [[expect]]
            kind = "members"
            count = 3
            within = "5s"
            """
        let topology = try Topology.parse(text, path: certificates.appendingPathComponent("tls.toml").path)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let report: Result<UpReport, any Error>
        do {
            report = .success(try await UpRunner(topology: topology, group: group).run())
        } catch {
            report = .failure(error)
        }
        try await group.shutdownGracefully()
        return try report.get()
    }

    func testNodesWithTheClustersCertificatesConverge() async throws {
        let report = try await run(node: "node-a", ca: "ca")
        XCTAssertTrue(report.ok, report.table())
    }

    func testACertificateFromAnotherCAStopsTheRunBeforeAnyNodeStarts() async throws {
        do {
            _ = try await run(node: "rogue", ca: "ca")
            XCTFail("a rogue certificate was accepted")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("rogue.pem does not verify against the CA"), text)
            XCTAssertTrue(text.hasSuffix("The TLS files came from \(Self.repository.path)/Tests/TrellisTransportTests/Certificates/tls.toml."), text)
        }
    }
}
