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

    func testTheSameSeedGivesTheSameRun() throws {
        let first = try run("hyparview-16.toml", seed: 7)
        let again = try run("hyparview-16.toml", seed: 7)
        XCTAssertEqual(first, again)
        XCTAssertNotEqual(try run("hyparview-16.toml", seed: 8).digest, first.digest, "the seed must matter")
    }

    func testJSONCarriesTheDigest() throws {
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run("quickstart.toml").json().utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["ok", "elapsed_ms", "nodes", "checks", "digest", "seed", "messages"])
    }
}
