import TrellisLua
import TrellisWire
import XCTest

/// Rolling back callbacks that changed nested tables of the state in place before failing:
/// shared tables, cycles and tables used as keys come back too.
extension LuaHostTests {
    func testEveryKindOfFailureRestoresNestedTablesSharingCyclesAndMetatables() throws {
        let script = try overlay(
            onMessage: """
                if msg == "probe" then
                  local summary = table.concat(state.views.a, ",") .. "|" .. state.shared.count .. "|" .. #state.list
                    .. "|" .. tostring(getmetatable(state.views) ~= nil) .. "|" .. tostring(state.views.b == state.shared)
                    .. "|" .. tostring(state.extra) .. "|" .. tostring(state.me == state) .. "|" .. tostring(state[state.key])
                  return state, nil, { { to = from, msg = summary } }
                end
                table.insert(state.views.a, "z"); state.views.a[1] = nil
                state.shared.count = 99; state.list = nil; state.extra = { 1 }
                setmetatable(state.views, {}); state.views.b = {}
                state.me = nil; state[state.key] = nil
                if msg == "error" then error("after the changes") end
                if msg == "budget" then while true do end end
                if msg == "memory" then local big = string.rep("x", 32 << 20) end
                return state, 42
                """,
            init: """
                local shared = { count = 0 }
                local state = { views = { a = { 'x', 'y' }, b = shared }, shared = shared, list = { 1, 2, 3 }, key = {} }
                state.me = state; state[state.key] = "by table"
                return state
                """
        )
        let intact: Value = "x,y|0|3|false|true|nil|true|by table"
        XCTAssertEqual(try script.receive("probe", from: peer, now: 1).messages.first?.message, intact)
        let expected: [String: ScriptError.Kind] = ["error": .runtime, "budget": .budgetExceeded, "memory": .memoryExceeded, "bad": .badReturn]
        for (mode, kind) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertThrowsError(try script.receive(.string(mode), from: peer, now: 2), mode) { error in
                XCTAssertEqual((error as? ScriptError)?.kind, kind, mode)
            }
            XCTAssertEqual(try script.receive("probe", from: peer, now: 3).messages.first?.message, intact, "after \(mode)")
        }
    }
}
