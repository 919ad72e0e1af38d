import TrellisFaults
import TrellisLua
import TrellisWire
import XCTest

/// Fault rules and scripts decide each message's fate, repeatably for a seed.
final class FaultDeciderTests: XCTestCase {
    let a = PeerID(name: "a", host: "127.0.0.1", port: 7001)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 7002)
    let c = PeerID(name: "c", host: "127.0.0.1", port: 7003)

    func verdicts(_ decider: FaultDecider, from: PeerID, to: PeerID, channel: String = "default", count: Int = 1000) -> [FaultVerdict] {
        (0..<count).map { n in decider.verdict(from: from, to: to, channel: channel) { .int(Int64(n)) } }
    }

    func testRulesSelectBySenderReceiverAndChannel() throws {
        let plan = FaultPlan(rules: [FaultRule(.drop, from: ["a"], to: [c.description], channel: "default")])
        let decider = try FaultDecider(plan: plan, seed: 1)
        XCTAssertEqual(Set(verdicts(decider, from: a, to: c)), [.drop], "named by name and by id")
        XCTAssertEqual(Set(verdicts(decider, from: b, to: c)), [.deliver], "another sender")
        XCTAssertEqual(Set(verdicts(decider, from: a, to: b)), [.deliver], "another receiver")
        XCTAssertEqual(Set(verdicts(decider, from: a, to: c, channel: "membership")), [.deliver], "another channel")
        XCTAssertEqual(decider.counts.dropped, 1000)
        XCTAssertEqual(decider.counts.delivered, 3000)
    }

    func testProbabilityIsHonouredAndRepeatsForASeed() throws {
        let plan = FaultPlan(rules: [FaultRule(.drop, probability: 0.25)])
        let first = verdicts(try FaultDecider(plan: plan, seed: 42), from: a, to: b, count: 10_000)
        let again = verdicts(try FaultDecider(plan: plan, seed: 42), from: a, to: b, count: 10_000)
        let other = verdicts(try FaultDecider(plan: plan, seed: 43), from: a, to: b, count: 10_000)
        XCTAssertEqual(first, again, "the same seed makes the same choices")
        XCTAssertNotEqual(first, other)
        let dropped = first.filter { $0 == .drop }.count
        XCTAssertTrue((2_250...2_750).contains(dropped), "25 % of 10,000 dropped, give or take: \(dropped)")
    }

    func testTheFirstRuleThatHitsDecidesAndDelaysStayInTheirWindow() throws {
        let plan = FaultPlan(rules: [
            FaultRule(.duplicate, to: ["b"], probability: 0.5),
            FaultRule(.delay(milliseconds: 100, jitter: 20)),
        ])
        let decider = try FaultDecider(plan: plan, seed: 7)
        let toB = verdicts(decider, from: a, to: b)
        XCTAssertTrue(toB.contains(.duplicate))
        for verdict in toB where verdict != .duplicate {
            guard case .delay(let ms) = verdict else { return XCTFail("a miss of the first rule falls to the second: \(verdict)") }
            XCTAssertTrue((100...120).contains(ms), "\(ms) ms")
        }
        let reorder = try FaultDecider(plan: FaultPlan(rules: [FaultRule(.reorder(window: 30))]), seed: 7)
        for verdict in verdicts(reorder, from: a, to: c) {
            if case .delay(let ms) = verdict { XCTAssertTrue((1...30).contains(ms)) } else { XCTAssertEqual(verdict, .deliver) }
        }
    }

    func testRulesReadFromTablesAndBack() throws {
        let table: Value = .map([
            "action": "delay", "delay_ms": 200, "jitter_ms": 50, "from": ["n1", "n2"], "to": "n3", "channel": "default",
            "probability": 0.5,
        ])
        let rule = try FaultRule(value: table)
        XCTAssertEqual(rule, FaultRule(.delay(milliseconds: 200, jitter: 50), from: ["n1", "n2"], to: ["n3"], channel: "default", probability: 0.5))
        XCTAssertEqual(try FaultRule(value: rule.value), rule)
        let plan = FaultPlan(rules: [rule, FaultRule(.reorder(window: 40))], script: .init(source: "return 1", fileName: "x.lua"))
        XCTAssertEqual(try FaultPlan(value: plan.value), plan)
    }

    func testMalformedRulesSayWhatToWrite() {
        let cases: [(Value, String)] = [
            (.map(["action": "explode"]), "use drop, delay, duplicate or reorder"),
            (.map(["action": "delay"]), "needs delay_ms"),
            (.map(["action": "drop", "probability": 2]), "from 0 to 1"),
            (.map(["action": "drop", "to": 5]), "node name"),
            (.map(["action": "delay", "delay_ms": -1]), "whole number of milliseconds"),
            ("drop", "must be a table"),
        ]
        for (value, advice) in cases {
            XCTAssertThrowsError(try FaultRule(value: value), "\(value)") { error in
                XCTAssertTrue("\(error)".contains(advice), "\(error)")
            }
        }
        XCTAssertThrowsError(try FaultPlan(value: .map(["rules": [.map(["action": "drop"]), .map([:])]]))) { error in
            XCTAssertTrue("\(error)".hasPrefix("rule 2:"), "\(error)")
        }
    }

    func testAScriptDecidesWhatNoRuleHit() throws {
        let source = """
            -- drops every third message to b, delays messages carrying a table by 5 ms
            local seen = 0
            return {
              name = "third", version = 1,
              decide = function(from, to, channel, message)
                if type(message) == "table" then return 5 end
                if to:find("^b@") then
                  seen = seen + 1
                  if seen % 3 == 0 then return "drop" end
                end
                return "deliver"
              end,
            }
            """
        let plan = FaultPlan(rules: [FaultRule(.duplicate, from: ["c"])], script: .init(source: source, fileName: "third.lua"))
        let decider = try FaultDecider(plan: plan, seed: 1)
        XCTAssertEqual(verdicts(decider, from: a, to: b, count: 9).filter { $0 == .drop }.count, 3)
        XCTAssertEqual(Set(verdicts(decider, from: c, to: b, count: 5)), [.duplicate], "a rule decides first")
        XCTAssertEqual(decider.verdict(from: a, to: c, channel: "default") { .map(["k": 1]) }, .delay(milliseconds: 5))
        XCTAssertEqual(decider.verdict(from: a, to: c, channel: "membership") { nil }, .deliver, "a heartbeat")
    }

    func testABrokenScriptIsRefusedAndAFailingOneDeliversAndIsCounted() throws {
        XCTAssertThrowsError(try FaultDecider(plan: FaultPlan(script: .init(source: "return { name = 'x' }", fileName: "bad.lua")), seed: 1)) {
            XCTAssertTrue("\($0)".contains("`decide` must be a function"), "\($0)")
        }
        let hostile: [(String, String)] = [
            ("while true do end", "instruction budget"),
            ("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1024) end", "memory cap"),
            ("error('nope')", "nope"),
            ("return { 'not', 'a', 'verdict' }", "bad return value"),
            ("return 1e9", "0 to 60000"),
            ("return function() end", "bad return value"),
        ]
        for (body, report) in hostile {
            let source = "return { name = 'h', version = 1, decide = function(from, to, channel, message) \(body) end }"
            let decider = try FaultDecider(
                plan: FaultPlan(script: .init(source: source, fileName: "hostile.lua")), seed: 1,
                limits: ScriptLimits(instructionBudget: 100_000, memoryCap: 4 << 20))
            XCTAssertEqual(verdicts(decider, from: a, to: b, count: 3), [.deliver, .deliver, .deliver], body)
            XCTAssertEqual(decider.counts.scriptErrors, 3, body)
            let error = try XCTUnwrap(decider.lastScriptError, body)
            XCTAssertTrue(error.description.contains(report) && error.description.contains("hostile.lua"), "\(body): \(error)")
        }
    }
}
