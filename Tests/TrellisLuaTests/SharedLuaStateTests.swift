import Foundation
import TrellisLua
import TrellisWire
import XCTest

/// VMs that share one Lua state (the simulator's nodes): each keeps its own globals, random
/// generator, state, memory account and cap, and its failures stay its own.
final class SharedLuaStateTests: XCTestCase {
    let limits = ScriptLimits(instructionBudget: 1_000_000, memoryCap: 4 << 20)
    let peer = "p1@127.0.0.1:7101"
    let context = OverlayContext(selfID: "me@127.0.0.1:7100", config: .map([:]), now: 0)

    /// Counts messages in a global and in the state, answers with both and a random number;
    /// "grow" keeps about n KiB more in the state, "bomb" allocates past any cap.
    let counter = """
        count = 0
        return {
          name = "counter", version = 1,
          init = function(ctx) return { n = 0, kept = {} } end,
          join = function(state) return state end,
          leave = function(state) return state end,
          on_tick = function(state) return state end,
          on_message = function(state, from, msg)
            count = count + 1
            state.n = state.n + 1
            if type(msg) == "table" and msg.grow then state.kept[#state.kept + 1] = string.rep("k", msg.grow * 1024) end
            if msg == "bomb" then local t = {} for i = 1, 1e9 do t[i] = string.rep("b", 1024) .. i end end
            if msg == "fail" then error("after counting") end
            return state, nil, { { to = from, msg = { count, state.n, math.random(1000000) } } }
          end,
        }
        """

    func reply(_ script: OverlayScript, _ message: Value = "hi") throws -> Value? {
        try script.receive(message, from: peer, now: 1).messages.first?.message.value
    }

    func started(_ source: String, seed: UInt64, sharing: SharedLuaState?) throws -> OverlayScript {
        let script = try OverlayScript(source: source, fileName: "counter.lua", limits: limits, seed: seed, sharing: sharing)
        _ = try script.start(context)
        return script
    }

    func testVMsInOneStateKeepTheirGlobalsStatesAndRandomNumbersApart() throws {
        let shared = try SharedLuaState()
        let a = try started(counter, seed: 7, sharing: shared)
        let b = try started(counter, seed: 8, sharing: shared)
        let alone = try started(counter, seed: 7, sharing: nil)
        for round in 1...3 {
            let fromA = try reply(a)
            XCTAssertEqual(fromA, try reply(alone), "a VM in a shared state runs as one with a state of its own")
            XCTAssertEqual(fromA?.arrayValue?.prefix(2), [.int(Int64(round)), .int(Int64(round))])
        }
        XCTAssertEqual(try reply(b)?.arrayValue?.prefix(2), [1, 1], "b has its own global count and state")
    }

    func testAFailureRollsBackOnlyTheFailingVM() throws {
        let shared = try SharedLuaState()
        let a = try started(counter, seed: 1, sharing: shared)
        let b = try started(counter, seed: 2, sharing: shared)
        _ = try reply(a)
        XCTAssertThrowsError(try reply(a, "fail"))
        _ = try reply(b)
        XCTAssertEqual(try reply(a)?.arrayValue?[1], 2, "the failed call's increment of the state was rolled back")
        XCTAssertEqual(try reply(b)?.arrayValue?[1], 2)
    }

    func testEachVMIsChargedForWhatItKeepsAndCappedAlone() throws {
        let shared = try SharedLuaState()
        let a = try started(counter, seed: 1, sharing: shared)
        let b = try started(counter, seed: 2, sharing: shared)
        let before = (a: a.memoryUsed, b: b.memoryUsed)
        _ = try reply(a, .map(["grow": 512]))
        XCTAssertGreaterThan(a.memoryUsed, before.a + 500 * 1024, "a keeps 512 KiB more")
        XCTAssertLessThan(b.memoryUsed, before.b + 64 * 1024, "b is not charged for a's strings")
        XCTAssertThrowsError(try reply(b, "bomb")) { error in
            XCTAssertEqual((error as? ScriptError)?.kind, .memoryExceeded)
        }
        XCTAssertLessThanOrEqual(b.memoryUsed, limits.memoryCap)
        XCTAssertEqual(try reply(a)?.arrayValue?[1], 2, "a keeps running after b's memory bomb")
        XCTAssertEqual(try reply(b)?.arrayValue?[1], 1)
    }

    func testAClosedVMLeavesTheOthersRunning() throws {
        let shared = try SharedLuaState()
        let b = try started(counter, seed: 2, sharing: shared)
        for seed in 10..<20 {
            let closing = try started(counter, seed: UInt64(seed), sharing: shared)
            _ = try reply(closing, .map(["grow": 64]))
        }
        for round in 1...3 { XCTAssertEqual(try reply(b)?.arrayValue?[1], .int(Int64(round))) }
    }

    func testVMsThatCloseLeaveTheirMemoryToTheNextOnes() throws {
        let shared = try SharedLuaState()
        func churn(_ count: Int) throws {
            for seed in 0..<count {
                let node = try started(counter, seed: UInt64(seed), sharing: shared)
                _ = try reply(node, .map(["grow": 16]))
            }
        }
        /// The process's resident bytes (/proc/self/statm counts pages).
        func resident() throws -> Int {
            let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
            return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
        try churn(100)
        let before = try resident()
        try churn(1_000)
        let grown = try resident() - before
        XCTAssertLessThan(grown, 8 << 20, "1,000 nodes that came and went took \(grown) more bytes")
    }

    func testTheSameTextUnderTwoNamesReportsEachName() throws {
        let shared = try SharedLuaState()
        for (file, other) in [("one.lua", "two.lua"), ("two.lua", "one.lua")] {
            let script = try OverlayScript(source: counter, fileName: file, limits: limits, sharing: shared)
            _ = try script.start(context)
            XCTAssertThrowsError(try reply(script, "fail")) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("\(file):13: on_message: after counting"), text)
                XCTAssertFalse(text.contains(other), text)
            }
        }
    }

    func testASyntaxErrorReadsAsInAVMOfItsOwn() throws {
        let broken = "return {\n  name = 'broken',\n  init = function(ctx) return {\n}\n"
        func failure(_ sharing: SharedLuaState?) -> String {
            do {
                _ = try OverlayScript(source: broken, fileName: "broken.lua", limits: limits, sharing: sharing)
                return "loaded"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(failure(try SharedLuaState()), failure(nil))
        XCTAssertTrue(failure(nil).hasPrefix("broken.lua:"), failure(nil))
    }
}
