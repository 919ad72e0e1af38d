import TrellisLua
import TrellisWire
import XCTest

/// The Lua host: values both ways, error reports, limits, state rollback and the trellis table.
final class LuaHostTests: XCTestCase {
    let limits = ScriptLimits(instructionBudget: 1_000_000, memoryCap: 16 << 20)
    let peer = "p1@127.0.0.1:7101"
    let context = OverlayContext(selfID: "me@127.0.0.1:7100", config: .map(["fanout": 3]), now: 0)

    /// An overlay whose `on_message` runs `body` with `state`, `from` and `msg` in scope.
    func overlay(limits: ScriptLimits? = nil, onMessage body: String, init initBody: String = "return { n = 0 }", seed: UInt64 = 0,
                 log: @escaping (String) -> Void = { _ in }) throws -> OverlayScript {
        let source = """
            return {
              name = "probe", version = 3, tick = 250,
              init = function(ctx) \(initBody) end,
              join = function(state) return state end,
              leave = function(state) return state end,
              on_tick = function(state) return state end,
              on_message = function(state, from, msg)
                \(body)
              end,
            }
            """
        let script = try OverlayScript(source: source, fileName: "probe.lua", limits: limits ?? self.limits, seed: seed, log: log)
        _ = try script.start(context)
        return script
    }

    func testValuesRoundTripThroughLua() throws {
        let script = try overlay(onMessage: "return state, nil, { { to = from, msg = msg } }")
        let values: [Value] = [
            .nil, true, false, 0, -1, .int(Int64.max), .int(Int64.min), 1.5, -0.25, "", "héllo",
            .bytes([0xff, 0x00, 0xfe]), [], [1, "two", 3.0], .map(["a": 1, "b": [true, .map(["c": "d"])]]),
            .map([.init(1, "one"), .init(3, "three")]),
        ]
        for value in values {
            let outcome = try script.receive(value, from: peer, now: 1)
            XCTAssertEqual(outcome.messages, [OverlayMessage(to: peer, message: value)], "\(value)")
        }
    }

    func testContextAndMetadataReachTheScript() throws {
        let script = try overlay(
            onMessage: "return state, { state.self }, { { to = from, msg = { state.fanout, state.now } } }",
            init: "return { self = ctx.self, fanout = ctx.config.fanout, now = ctx.now }"
        )
        XCTAssertEqual(script.name, "probe")
        XCTAssertEqual(script.version, 3)
        XCTAssertEqual(script.tickInterval, 250)
        let outcome = try script.receive(.nil, from: peer, now: 1)
        XCTAssertEqual(outcome.members, [context.selfID])
        XCTAssertEqual(outcome.messages.first?.message.value, [3, 0])
    }

    func testRuntimeErrorsNameFileLineAndCallback() throws {
        let script = try overlay(onMessage: "local t = nil\n    return t.field")
        XCTAssertThrowsError(try script.receive(.nil, from: peer, now: 1)) { error in
            let error = error as! ScriptError
            XCTAssertEqual(error.kind, .runtime)
            XCTAssertEqual(error.line, 9)
            XCTAssertEqual(error.callback, "on_message")
            XCTAssertTrue(error.description.hasPrefix("probe.lua:9: on_message: attempt to index a nil value"), error.description)
        }
    }

    func testAFailedCallbackLeavesTheStateAsItWas() throws {
        let script = try overlay(onMessage: """
            state.n = state.n + 1
                if msg == "fail" then error("after the increment") end
                if msg == "bad" then return state, 42 end
                return state, nil, { { to = from, msg = state.n } }
            """)
        XCTAssertEqual(try script.receive("ok", from: peer, now: 1).messages.first?.message.value, 1)
        XCTAssertThrowsError(try script.receive("fail", from: peer, now: 2))
        XCTAssertThrowsError(try script.receive("bad", from: peer, now: 3))
        XCTAssertEqual(try script.receive("ok", from: peer, now: 4).messages.first?.message.value, 2,
                       "neither the error nor the bad return may keep their increment")
    }

    func testStateKeepsSharingCyclesAndFunctions() throws {
        let script = try overlay(
            onMessage: """
                assert(state.a == state.b and state.loop.loop == state.loop and state.f() == 7)
                state.a.count = state.a.count + 1
                return state, nil, { { to = from, msg = state.b.count } }
                """,
            init: "local shared = { count = 0 }; local loop = {}; loop.loop = loop; return { a = shared, b = shared, loop = loop, f = function() return 7 end }"
        )
        XCTAssertEqual(try script.receive(.nil, from: peer, now: 1).messages.first?.message.value, 1)
        XCTAssertEqual(try script.receive(.nil, from: peer, now: 2).messages.first?.message.value, 2)
    }

    func testBudgetIsPerCallbackAndResets() throws {
        let script = try overlay(onMessage: "for i = 1, msg do end return state")
        XCTAssertNoThrow(try script.receive(100_000, from: peer, now: 1))
        XCTAssertThrowsError(try script.receive(10_000_000, from: peer, now: 2)) { error in
            XCTAssertEqual((error as! ScriptError).kind, .budgetExceeded)
        }
        XCTAssertNoThrow(try script.receive(100_000, from: peer, now: 3), "the next callback gets a fresh budget")
    }

    func testMemoryIsReclaimedAfterABomb() throws {
        let script = try overlay(onMessage: "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 65536) .. i end")
        let before = script.memoryUsed
        XCTAssertThrowsError(try script.receive(.nil, from: peer, now: 1)) { error in
            XCTAssertEqual((error as! ScriptError).kind, .memoryExceeded)
        }
        XCTAssertLessThan(script.memoryUsed, before + (1 << 20), "the bomb's garbage is collected")
    }

    func testHashAndShardMatchSwift() throws {
        let ids = ["", "a", "game:42", "n1@127.0.0.1:7101", "ünïcode"]
        let script = try overlay(onMessage: """
            local out = {}
            for i, id in ipairs(msg) do out[i] = { trellis.hash(id), trellis.shard(id), trellis.shard(id, 7) } end
            return state, nil, { { to = from, msg = out } }
            """)
        let outcome = try script.receive(.array(ids.map(Value.string)), from: peer, now: 1)
        let expected = Value.array(ids.map { id in
            [.int(Int64(bitPattern: StableHash.hash64(id.utf8))), .int(Int64(StableHash.shard(id))), .int(Int64(StableHash.shard(id, count: 7)))]
        })
        XCTAssertEqual(outcome.messages.first?.message.value, expected)
        XCTAssertEqual(StableHash.hash64("a".utf8), 0x6f4f_2d0b_e9c7_fe7c & 0 | StableHash.hash64([0x61]), "bytes and text agree")
    }

    func testRandomRepeatsPerSeed() throws {
        func draws(_ seed: UInt64) throws -> Value? {
            let script = try overlay(onMessage: """
                local out = {}
                for i = 1, 8 do out[i] = math.random(1000000) end
                return state, nil, { { to = from, msg = out } }
                """, seed: seed)
            return try script.receive(.nil, from: peer, now: 1).messages.first?.message.value
        }
        XCTAssertEqual(try draws(7), try draws(7))
        XCTAssertNotEqual(try draws(7), try draws(8))
    }

    func testLogAndPrintReachTheNode() throws {
        var lines: [String] = []
        let script = try overlay(onMessage: "trellis.log('got', msg, 1.5) print(from) return state", log: { lines.append($0) })
        _ = try script.receive("hi", from: peer, now: 1)
        XCTAssertEqual(lines, ["got hi 1.5", peer])
    }

    func testXpcallHandlersStillRunForOrdinaryErrors() throws {
        let script = try overlay(onMessage: """
            local ok, why = xpcall(function() error("inner", 0) end, function(e) return "handled " .. e end)
                return state, nil, { { to = from, msg = { ok, why } } }
            """)
        XCTAssertEqual(try script.receive(.nil, from: peer, now: 1).messages.first?.message.value, [false, "handled inner"])
    }

    func testOptionalCallbacksMayBeAbsent() throws {
        let script = try overlay(onMessage: "return state")
        XCTAssertEqual(try script.connectionUp(peer, now: 1), .unchanged)
        XCTAssertEqual(try script.connectionDown(peer, reason: "connection lost", now: 1), .unchanged)
    }
}
