import TrellisDiscovery
import TrellisWire
import XCTest

final class DiscoveryPlannerTests: XCTestCase {
    let me = PeerID(name: "me", host: "127.0.0.1", port: 7100)
    let a = PeerID(name: "a", host: "127.0.0.1", port: 7101)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 7102)
    let c = PeerID(name: "c", host: "127.0.0.1", port: 7103)

    func planner(_ settings: DiscoverySettings = DiscoverySettings()) -> DiscoveryPlanner {
        DiscoveryPlanner(selfID: me, settings: settings)
    }

    func testJoinsDiscoveredNonMembersButNeverItselfOrMembers() {
        var planner = planner()
        var random = SystemRandomNumberGenerator()
        let plan = planner.plan(discovered: [me, a, b, c], members: [me, b], now: .zero, using: &random)
        XCTAssertEqual(plan.joins, [a, c])
        XCTAssertEqual(plan.appeared, [a, b, c])
        XCTAssertEqual(plan.vanished, [])
        XCTAssertEqual(plan.deferred, 0)
    }

    func testRejoinsANonMemberOnlyAfterABackoffThatDoublesUpToTheCap() {
        let settings = DiscoverySettings(rejoinBackoff: .seconds(1), maxRejoinBackoff: .seconds(4))
        var planner = planner(settings)
        var random = SystemRandomNumberGenerator()
        var now = Duration.zero
        var joins: [Duration] = []
        // Poll every 100 ms for 20 s; `a` is discovered and never becomes a member.
        while now <= .seconds(20) {
            if !planner.plan(discovered: [a], members: [me], now: now, using: &random).joins.isEmpty { joins.append(now) }
            now += .milliseconds(100)
        }
        let gaps = zip(joins.dropFirst(), joins).map { $0 - $1 }
        XCTAssertEqual(joins.first, .zero)
        // Waits of ½..1 × 1 s, 2 s, 4 s, then 4 s (capped), on a 100 ms poll grid.
        for (index, gap) in gaps.enumerated() {
            let full = Duration.seconds(min(1 << index, 4))
            XCTAssertGreaterThanOrEqual(gap, full / 2, "gap \(index)")
            XCTAssertLessThanOrEqual(gap, full + .milliseconds(100), "gap \(index)")
        }
        XCTAssertGreaterThanOrEqual(joins.count, 6)
    }

    func testAMemberThatDropsIsJoinedAgainAtOnce() {
        var planner = planner(DiscoverySettings(rejoinBackoff: .seconds(10), maxRejoinBackoff: .seconds(60)))
        var random = SystemRandomNumberGenerator()
        XCTAssertEqual(planner.plan(discovered: [a], members: [me], now: .zero, using: &random).joins, [a])
        // `a` became a member, then dropped (it restarted): no backoff left from before.
        XCTAssertEqual(planner.plan(discovered: [a], members: [me, a], now: .seconds(1), using: &random).joins, [])
        XCTAssertEqual(planner.plan(discovered: [a], members: [me], now: .seconds(2), using: &random).joins, [a])
        // Still not a member a moment later: backing off, counted as deferred.
        let waiting = planner.plan(discovered: [a], members: [me], now: .seconds(3), using: &random)
        XCTAssertEqual(waiting.joins, [])
        XCTAssertEqual(waiting.deferred, 1)
    }

    func testVanishedPeersAreReportedAndForgotten() {
        var planner = planner(DiscoverySettings(rejoinBackoff: .seconds(10), maxRejoinBackoff: .seconds(60)))
        var random = SystemRandomNumberGenerator()
        _ = planner.plan(discovered: [a, b], members: [me], now: .zero, using: &random)
        let second = planner.plan(discovered: [b], members: [me], now: .seconds(1), using: &random)
        XCTAssertEqual(second.vanished, [a])
        XCTAssertEqual(second.joins, [])
        // `a` comes back: a new peer again, joined at once despite its earlier backoff.
        let third = planner.plan(discovered: [a, b], members: [me], now: .seconds(2), using: &random)
        XCTAssertEqual(third.appeared, [a])
        XCTAssertEqual(third.joins, [a])
    }

    func testAtMostMaxJoinsPerPollAndTheRestOnLaterPolls() {
        var planner = planner(DiscoverySettings(maxJoinsPerPoll: 2))
        var random = SystemRandomNumberGenerator()
        let peers = Set((1...5).map { PeerID(name: "p\($0)", host: "127.0.0.1", port: 7200 + $0) })
        var joined: Set<PeerID> = []
        for poll in 0..<3 {
            let plan = planner.plan(discovered: peers, members: [me], now: .milliseconds(poll), using: &random)
            XCTAssertLessThanOrEqual(plan.joins.count, 2)
            XCTAssertTrue(joined.isDisjoint(with: plan.joins), "a peer never tried goes before one tried already")
            joined.formUnion(plan.joins)
        }
        XCTAssertEqual(joined, peers)
    }

    func testWhileFewerMembersThanJoinsOnlyAnIsolatedNode() {
        var planner = planner(DiscoverySettings(joinPolicy: .whileFewerMembersThan(2)))
        var random = SystemRandomNumberGenerator()
        XCTAssertEqual(planner.plan(discovered: [a, b], members: [me, c], now: .zero, using: &random).joins, [])
        XCTAssertEqual(planner.plan(discovered: [a, b], members: [me], now: .seconds(1), using: &random).joins, [a, b])
    }

    func testSettingsOutOfRangeAreRefusedByName() {
        let cases: [(DiscoverySettings, String)] = [
            (DiscoverySettings(interval: .zero), "interval"),
            (DiscoverySettings(jitter: 1.5), "jitter"),
            (DiscoverySettings(rejoinBackoff: .seconds(2), maxRejoinBackoff: .seconds(1)), "maxRejoinBackoff"),
            (DiscoverySettings(maxJoinsPerPoll: 0), "maxJoinsPerPoll"),
            (DiscoverySettings(joinPolicy: .whileFewerMembersThan(1)), "joinPolicy"),
        ]
        for (settings, name) in cases {
            XCTAssertThrowsError(try settings.validate()) { error in
                guard case .invalidSetting(let setting, _) = error as? DiscoveryError else { return XCTFail("\(error)") }
                XCTAssertEqual(setting, name)
            }
        }
    }

    func testPollDelaysStayWithinTheJitter() {
        let settings = DiscoverySettings(interval: .seconds(5), jitter: 0.2)
        var random = SystemRandomNumberGenerator()
        let delays = (0..<200).map { _ in settings.pollDelay(using: &random) }
        XCTAssertTrue(delays.allSatisfy { $0 >= .seconds(4) && $0 <= .seconds(6) })
        XCTAssertGreaterThan(Set(delays).count, 100, "delays are drawn, not fixed")
    }
}
