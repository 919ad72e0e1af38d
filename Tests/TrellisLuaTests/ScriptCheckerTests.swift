import Foundation
import TrellisLua
import XCTest

/// `trellis check`'s engine on the shipped scripts and on broken ones.
final class ScriptCheckerTests: XCTestCase {
    static let plugins = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins")

    func testShippedOverlaysAreSound() throws {
        let overlays = try FileManager.default.contentsOfDirectory(atPath: Self.plugins.appendingPathComponent("overlays").path)
        XCTAssertFalse(overlays.isEmpty)
        for file in overlays where file.hasSuffix(".lua") {
            let source = try String(contentsOf: Self.plugins.appendingPathComponent("overlays/\(file)"), encoding: .utf8)
            let result = ScriptChecker.check(source: source, fileName: file)
            if case .failure(let error) = result { XCTFail("\(file): \(error)") }
        }
    }

    func testPlacementAndActorShapesAreRecognised() {
        let placement = #"return { name = "first", version = 1, owner = function(shard, cap, nodes) return nodes[1].id end }"#
        XCTAssertEqual(try ScriptChecker.check(source: placement, fileName: "first.lua").get(), "placement policy 'first' version 1: owner")
        let actor = #"return { name = "c", version = 2, capability = "counter", init = function() return 0 end, handle_call = function(s) return s, s end }"#
        XCTAssertEqual(
            try ScriptChecker.check(source: actor, fileName: "c.lua").get(),
            "actor 'c' version 2 for capability 'counter': init, handle_call"
        )
    }

    func testProblemsAreListedTogether() {
        let source = #"return { version = "one", init = function() return {} end, tick = -5, on_up = 3 }"#
        guard case .failure(let error) = ScriptChecker.check(source: source, fileName: "bad.lua") else { return XCTFail() }
        XCTAssertEqual(error.kind, .invalidScript)
        for problem in ["`name`", "`version`", "`tick`", "`join`", "`on_message`", "`on_tick`", "`on_up`"] {
            XCTAssertTrue(error.message.contains(problem), "\(problem) missing from \(error.message)")
        }
    }

    func testInitRunsDuringTheCheck() {
        let source = """
            return {
              name = "x", version = 1,
              init = function(ctx) return ctx.config.missing.field end,
              join = function(s) return s end, leave = function(s) return s end,
              on_message = function(s) return s end, on_tick = function(s) return s end,
            }
            """
        guard case .failure(let error) = ScriptChecker.check(source: source, fileName: "x.lua") else { return XCTFail() }
        XCTAssertEqual(error.callback, "init")
        XCTAssertEqual(error.line, 3)
    }
}
