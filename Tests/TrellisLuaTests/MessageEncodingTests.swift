import TrellisWire
import XCTest

@testable import TrellisLua

/// The C encoder of overlay messages (the fast path) writes exactly the bytes Swift's reader and
/// encoder write for the same Lua value, and leaves to them every value they would refuse.
final class MessageEncodingTests: XCTestCase {
    /// `random(seed)` returns messages to "n2" carrying a random value: edge integers, floats,
    /// valid and invalid UTF-8, sequences, maps with string and integer keys, mixed tables.
    private let generator = #"""
        local ints = { 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129,
          -32768, -32769, -2147483648, -2147483649, math.maxinteger, math.mininteger }
        local floats = { 1.5, -0.0, 0.0, 1 / 0, -1 / 0, 2 ^ 53, 1e-300 }
        local strings = { "", "a", "héllo", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
          "\xf0\x9f\x98\x80", "\xc2", string.rep("x", 31), string.rep("y", 32), string.rep("z", 256), string.rep("w", 70000) }
        local function value(depth)
          local kind = math.random(depth > 4 and 5 or 9)
          if kind == 1 then return math.random(2) == 1
          elseif kind == 2 then return ints[math.random(#ints)]
          elseif kind == 3 then return floats[math.random(#floats)]
          elseif kind == 4 then return math.random(-100000, 100000)
          elseif kind == 5 then return strings[math.random(#strings - 1)]
          elseif kind == 6 then
            local t = {} for i = 1, math.random(0, 20) do t[i] = value(depth + 1) end return t
          elseif kind == 7 then
            local t = {} for _ = 1, math.random(0, 20) do t[strings[math.random(#strings - 1)] .. math.random(3)] = value(depth + 1) end
            return t
          elseif kind == 8 then
            local t = {} for _ = 1, math.random(1, 20) do t[ints[math.random(#ints)]] = value(depth + 1) end return t
          else
            local t = { value(depth + 1) } t[math.random(2, 5)] = value(depth + 1) t.k = value(depth + 1) return t
          end
        end
        """#

    private func vm(_ body: String, limits: ScriptLimits = .init()) throws -> LuaVM {
        let vm = try LuaVM(fileName: "encode.lua", limits: limits, seed: 1)
        _ = try vm.loadScript(generator + "\nreturn { name = 'encode', version = 1, " + body + " }")
        return vm
    }

    /// Calls `callback(argument)` and returns what each path made of its third result: the
    /// fast path's messages (nil when it declined) and the careful path's value (nil when it
    /// refused it).
    private func bothPaths(_ vm: LuaVM, _ callback: String, _ argument: Value) throws -> ([OverlayMessage]?, Value?) {
        try vm.invoke(callback, passingState: false, arguments: [argument], results: 3) { results throws(ScriptError) in
            let fast = results.encodedMessages(at: 3)
            return (fast, try? results.value(3, named: "messages"))
        }
    }

    func testRandomValuesEncodeExactlyAsSwiftEncodesThem() throws {
        let vm = try vm("random = function(seed) math.randomseed(seed) return nil, nil, { { to = 'n2', msg = value(0) }, { to = 'n3' } } end")
        for seed in 1...1_000 {
            let (fast, slow) = try bothPaths(vm, "random", .int(Int64(seed)))
            guard let fast, let slow, case .array(let elements) = slow else { return XCTFail("seed \(seed): a path declined") }
            XCTAssertEqual(fast.map(\.to), ["n2", "n3"])
            XCTAssertEqual(fast.map(\.message.bytes), elements.map { MessagePack.encode($0["msg"] ?? .nil) }, "seed \(seed)")
        }
    }

    func testWhatSwiftRefusesIsLeftToSwift() throws {
        let refused = [
            "{ { to = 'n2', msg = { f = print } } }", "{ { to = 'n2', msg = { [1.5] = true } } }",
            "{ { to = 'n2', msg = { [true] = 1 } } }",
            "(function() local t = {} t.t = t return { { to = 'n2', msg = t } } end)()",
            "(function() local out = {} out[1] = { to = 'n2', msg = out } return out end)()",
            "(function() local m = { to = 'n2' } m.msg = m return { m } end)()",
            "{ { to = 'n2', msg = { { { { { { { 1 } } } } } } } } }", "{ { to = 'n2', msg = { 1, 2, 3, 4, 5, 6, 7, 8, 9 } } }",
            "{ { to = 'n2', msg = string.rep('x', 58) } }", "{ { to = 'n2', msg = { [string.rep('k', 50)] = 'abcdefgh' } } }",
        ]
        let limits = ScriptLimits(maxValueDepth: 8, maxValueElements: 12, maxValueBytes: 64)
        for case let (index, messages) in refused.enumerated() {
            let vm = try vm("m\(index) = function() return nil, nil, \(messages) end", limits: limits)
            let (fast, slow) = try bothPaths(vm, "m\(index)", .nil)
            XCTAssertNil(fast, messages)
            XCTAssertNil(slow, messages)
        }
    }

    /// Shapes the overlay contract refuses once they are read as values: the reader's errors
    /// name them (messages[1].to ...), so the fast path declines them too.
    func testMisshapenMessagesAreLeftToSwift() throws {
        let misshapen = ["{ { to = 7, msg = 1 } }", "{ { to = '\\xff', msg = 1 } }", "{ 'n2' }", "{ [2] = { to = 'n2' } }", "7"]
        for case let (index, messages) in misshapen.enumerated() {
            let vm = try vm("m\(index) = function() return nil, nil, \(messages) end")
            XCTAssertNil(try bothPaths(vm, "m\(index)", .nil).0, messages)
        }
    }

    func testShapesOutsideTheFastPathStillWork() throws {
        let accepted = [
            "{ { to = 'n2', msg = 1, note = 'extra' } }",
            "{ { to = 'n2', msg = { { { { { { 1 } } } } } } } }", "{ { to = 'n2', msg = { 1, 2, 3, 4, 5, 6, 7, 8 } } }",
            "{ { to = 'n2', msg = string.rep('x', 57) } }",
        ]
        let limits = ScriptLimits(maxValueDepth: 8, maxValueElements: 12, maxValueBytes: 64)
        for case let (index, messages) in accepted.enumerated() {
            let vm = try vm("m\(index) = function() return nil, nil, \(messages) end", limits: limits)
            let (fast, slow) = try bothPaths(vm, "m\(index)", .nil)
            XCTAssertNotNil(slow, messages)
            if let fast, case .array(let elements) = slow {
                XCTAssertEqual(fast.map(\.message.bytes), elements.map { MessagePack.encode($0["msg"] ?? .nil) }, messages)
            }
        }
    }
}
