import Foundation
import XCTest

@testable import TrellisTopology

/// A temporary folder holding a stub overlay script `overlay.lua`, for parsing topology texts.
final class TopologyScratch {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-topology-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try write("-- stub overlay\n", to: "overlay.lua")
    }

    deinit { try? FileManager.default.removeItem(at: folder) }

    /// The path of `relative` inside the folder.
    func path(_ relative: String) -> String { folder.appendingPathComponent(relative).path }

    @discardableResult
    func write(_ text: String, to relative: String) throws -> String {
        let url = folder.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Parses `text` as if it were `t.toml` in the folder.
    func parse(_ text: String) throws(TopologyError) -> Topology {
        try Topology.parse(text, path: path("t.toml"))
    }

    /// Asserts that parsing `text` fails with `kind` on `line`, at `key`, with a message containing `fragments`.
    func assertError(
        _ text: String, _ kind: TopologyError.Kind, line: Int?, key: String?, _ fragments: String...,
        file: StaticString = #filePath, sourceLine: UInt = #line
    ) {
        do {
            let topology = try parse(text)
            XCTFail("expected a \(kind) error, parsed \(topology.name)", file: file, line: sourceLine)
        } catch {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: sourceLine)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: sourceLine)
            XCTAssertEqual(error.key, key, "\(error)", file: file, line: sourceLine)
            XCTAssertFalse(error.fix.isEmpty, "\(error)", file: file, line: sourceLine)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "\"\(fragment)\" not in: \(error)", file: file, line: sourceLine)
            }
        }
    }
}

/// The smallest valid topology: three nodes, overlay `overlay.lua`. Lines 1-5.
let minimalTopology = """
    name = "t"
    overlay = "overlay.lua"

    [nodes]
    count = 3

    """
