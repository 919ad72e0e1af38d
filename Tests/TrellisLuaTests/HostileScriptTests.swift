import Foundation
import TrellisLua
import TrellisWire
import XCTest

/// Every script in `HostileScripts/` misbehaves in one way, named on its first line:
/// `-- expect: <kind>[|<kind>...] <callback>` (`none none` for a script that must be harmless).
/// Each is driven through init, join, on_message, on_tick and on_down; the first failure must be
/// the expected one, name the file, and leave a VM that still answers and stays within its cap.
final class HostileScriptTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("HostileScripts")
    static let limits = ScriptLimits(instructionBudget: 500_000, memoryCap: 8 << 20, maxValueElements: 100_000)
    let peer = "p1@127.0.0.1:7101"

    struct Expectation {
        let kinds: [String]
        let callback: String
    }

    func expectation(in source: String, file: String) throws -> Expectation {
        let header = try XCTUnwrap(source.split(separator: "\n").first, file)
        let fields = header.split(separator: " ")
        guard fields.count == 4, fields[0] == "--", fields[1] == "expect:" else {
            throw XCTSkip("\(file): first line must be `-- expect: <kind> <callback>`")
        }
        return Expectation(kinds: fields[2].split(separator: "|").map(String.init), callback: String(fields[3]))
    }

    /// Runs the script's callbacks in order; returns the first failure, if any.
    func drive(_ source: String, file: String, sharing: SharedLuaState? = nil) -> (ScriptError?, OverlayScript?) {
        let script: OverlayScript
        do {
            script = try OverlayScript(source: source, fileName: file, limits: Self.limits, sharing: sharing)
        } catch {
            return (error, nil)
        }
        let context = OverlayContext(selfID: "me@127.0.0.1:7100", config: .map([:]), now: 0)
        do {
            _ = try script.start(context)
            _ = try script.join(peer, now: 1)
            _ = try script.receive(.map(["type": "hello"]), from: peer, now: 2)
            _ = try script.tick(now: 3)
            _ = try script.connectionDown(peer, reason: "connection lost", now: 4)
        } catch {
            return (error, script)
        }
        return (nil, script)
    }

    func testEveryHostileScriptIsContainedAndReported() throws {
        try checkTheCorpus(sharing: nil)
    }

    /// The simulator's case: every hostile script in one shared state, next to a well-behaved
    /// script that must keep its state and answer after each of them.
    func testEveryHostileScriptIsContainedInAStateSharedWithOthers() throws {
        let shared = try SharedLuaState()
        let neighbor = try OverlayScript(source: """
            return {
              name = "neighbor", version = 1,
              init = function() return { n = 0 } end,
              join = function(s) return s end, leave = function(s) return s end, on_tick = function(s) return s end,
              on_message = function(s, from) s.n = s.n + 1; return s, nil, { { to = from, msg = s.n } } end,
            }
            """, fileName: "neighbor.lua", limits: Self.limits, sharing: shared)
        _ = try neighbor.start(OverlayContext(selfID: "n@127.0.0.1:7100", config: .map([:]), now: 0))
        var answers: Int64 = 0
        try checkTheCorpus(sharing: shared) { file in
            answers += 1
            let answer = try? neighbor.receive("hello", from: self.peer, now: 1).messages.first?.message.value
            XCTAssertEqual(answer, .int(answers), "the neighbor after \(file)")
        }
    }

    func checkTheCorpus(sharing: SharedLuaState?, after: (String) throws -> Void = { _ in }) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 30, "the corpus lost scripts")
        for file in files {
            let source = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
            let expected = try expectation(in: source, file: file)
            let (failure, script) = drive(source, file: file, sharing: sharing)
            try after(file)
            guard expected.callback != "none" else {
                XCTAssertNil(failure, "\(file) should be harmless: \(String(describing: failure))")
                continue
            }
            guard let failure else {
                XCTFail("\(file): expected \(expected.kinds) in \(expected.callback), but every callback succeeded")
                continue
            }
            XCTAssertTrue(expected.kinds.contains("\(failure.kind)"), "\(file): got \(failure.kind): \(failure)")
            XCTAssertEqual(failure.callback, expected.callback, "\(file): \(failure)")
            XCTAssertEqual(failure.file, file)
            XCTAssertTrue(failure.description.hasPrefix(file), failure.description)
            if failure.kind != .invalidScript { XCTAssertNotNil(failure.line, "\(file): no line in \(failure)") }
            if let script {
                XCTAssertLessThanOrEqual(script.memoryUsed, Self.limits.memoryCap, file)
                // The VM still answers after the failure: on_up is optional, join is not.
                XCTAssertNoThrow(try? script.connectionUp(peer, now: 5), file)
            }
        }
    }

    func testSandboxedCallsNameWhatIsMissing() throws {
        let source = try String(contentsOf: Self.directory.appendingPathComponent("os_execute.lua"), encoding: .utf8)
        let (failure, _) = drive(source, file: "os_execute.lua")
        let error = try XCTUnwrap(failure)
        XCTAssertTrue(error.message.contains("global 'os'"), error.description)
        XCTAssertTrue(error.hint?.contains("not available in the sandbox") == true, error.description)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/trellis-pwned"))
    }
}
