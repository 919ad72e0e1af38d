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
        XCTAssertEqual(try script.receive("probe", from: peer, now: 1).messages.first?.message.value, intact)
        let expected: [String: ScriptError.Kind] = ["error": .runtime, "budget": .budgetExceeded, "memory": .memoryExceeded, "bad": .badReturn]
        for (mode, kind) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertThrowsError(try script.receive(.string(mode), from: peer, now: 2), mode) { error in
                XCTAssertEqual((error as? ScriptError)?.kind, kind, mode)
            }
            XCTAssertEqual(try script.receive("probe", from: peer, now: 3).messages.first?.message.value, intact, "after \(mode)")
        }
    }

    /// A table too big to record entry by entry is recorded as a copy, and a state too big
    /// for one log thread goes on in the next: both come back whole, nested tables included.
    func testBigTablesAndStatesBiggerThanOneLogComeBack() throws {
        let script = try overlay(
            limits: ScriptLimits(instructionBudget: 10_000_000, memoryCap: 64 << 20),
            onMessage: """
                if msg == "probe" then
                  local sum = 0
                  for i = 1, #state.big do sum = sum + (type(state.big[i]) == "table" and state.big[i][1] or state.big[i]) end
                  return state, nil, { { to = from, msg = #state.big .. "|" .. sum .. "|" .. #state.many .. "|" .. state.many[90000][1] } }
                end
                state.big[5000] = nil; state.big[7].x = nil; state.big[7][1] = -1; state.big[#state.big + 1] = 1
                state.many[90000][1] = 0; state.many[1] = nil
                error("after the changes")
                """,
            init: """
                local big, many = {}, {}
                for i = 1, 10000 do big[i] = (i % 1000 == 7) and { i, x = true } or i end
                for i = 1, 90000 do many[i] = { i } end
                return { big = big, many = many }
                """
        )
        let intact: Value = "10000|50005000|90000|90000"
        XCTAssertEqual(try script.receive("probe", from: peer, now: 1).messages.first?.message.value, intact)
        XCTAssertThrowsError(try script.receive("change", from: peer, now: 2))
        XCTAssertEqual(try script.receive("probe", from: peer, now: 3).messages.first?.message.value, intact)
    }
}
