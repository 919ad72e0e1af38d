import Foundation
import XCTest

@testable import TrellisTopology

/// A topology's `[tls]` table: the files every node of `trellis up` uses.
final class TopologyTLSTests: XCTestCase {
    let scratch = try! TopologyScratch()

    override func setUpWithError() throws {
        for name in ["ca.pem", "node.pem", "node.key"] { try scratch.write("stand-in\n", to: "certs/" + name) }
    }

    func testPathsAreTakenFromTheTopologyFilesFolder() throws {
        let topology = try scratch.parse(minimalTopology + "[tls]\ncert = \"certs/node.pem\"\nkey = \"certs/node.key\"\nca = \"certs/ca.pem\"\n")
        XCTAssertEqual(
            topology.tls,
            NodeTLSFiles(
                certificate: scratch.path("certs/node.pem"), privateKey: scratch.path("certs/node.key"), ca: scratch.path("certs/ca.pem"),
                origins: [scratch.path("t.toml")]))
        XCTAssertNil(try scratch.parse(minimalTopology).tls, "plain TCP without [tls]")
    }

    func testErrorsNameTheLineTheKeyAndTheFix() {
        let complete = "cert = \"certs/node.pem\"\nkey = \"certs/node.key\"\nca = \"certs/ca.pem\"\n"
        scratch.assertError(minimalTopology + "[tls]\ncert = \"certs/node.pem\"\nca = \"certs/ca.pem\"\n", .missingKey, line: 6, key: "tls.key", "Add `key = ")
        scratch.assertError(
            minimalTopology + "[tls]\n" + complete.replacingOccurrences(of: "certs/ca.pem", with: "ca.pem"), .invalidValue, line: 9,
            key: "tls.ca", "no file at \(scratch.path("ca.pem"))", "taken from the folder of t.toml")
        scratch.assertError(minimalTopology + "[tls]\n" + complete + "certificate = \"x\"\n", .unknownKey, line: 10, key: "tls.certificate")
        scratch.assertError("tls = \"on\"\n" + minimalTopology, .wrongType, line: 1, key: "tls", "expected a table")
    }
}
