import Logging
import Synchronization
import TrellisDiscovery
import TrellisWire
import XCTest

/// A strategy that answers from a script, one answer per call (the last one repeats).
final class ScriptedStrategy: DiscoveryStrategy {
    let answers: [Result<Set<PeerID>, DiscoveryError>]
    let calls = Mutex(0)
    let shutdowns = Mutex(0)

    init(_ answers: [Result<Set<PeerID>, DiscoveryError>]) { self.answers = answers }

    var name: String { "scripted" }

    func discover() async throws(DiscoveryError) -> Set<PeerID> {
        let call = calls.withLock { count in
            defer { count += 1 }
            return count
        }
        return try answers[min(call, answers.count - 1)].get()
    }

    func shutdown() async { shutdowns.withLock { $0 += 1 } }
}

/// A node stand-in: a joined peer becomes a member at once; it stops after `polls` member reads.
final class FakeTarget: DiscoveryTarget {
    let selfID = PeerID(name: "me", host: "127.0.0.1", port: 7100)
    let state: Mutex<(members: Set<PeerID>, joins: [PeerID], readsLeft: Int)>

    init(members: Set<PeerID> = [], reads: Int = .max) {
        state = Mutex((members.union([selfID]), [], reads))
    }

    func members() async -> Set<PeerID>? {
        state.withLock { state in
            guard state.readsLeft > 0 else { return nil }
            state.readsLeft -= 1
            return state.members
        }
    }

    func join(_ peer: PeerID) async {
        state.withLock {
            $0.joins.append(peer)
            $0.members.insert(peer)
        }
    }

    func drop(_ peer: PeerID) { state.withLock { _ = $0.members.remove(peer) } }
    var joins: [PeerID] { state.withLock { $0.joins } }
}

/// A clock whose sleeps return at once and move its time on.
final class ManualClock: Sendable {
    let state = Mutex((now: Duration.zero, sleeps: [Duration]()))

    var clock: DiscoveryClock {
        DiscoveryClock(
            now: { self.state.withLock { $0.now } },
            sleep: { duration in self.state.withLock { $0.now += duration; $0.sleeps.append(duration) } })
    }

    var sleeps: [Duration] { state.withLock { $0.sleeps } }
    func advance(_ duration: Duration) { state.withLock { $0.now += duration } }
}

final class DiscoveryDriverTests: XCTestCase {
    let a = PeerID(name: "a", host: "127.0.0.1", port: 7101)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 7102)

    /// One poll of a driver whose node runs.
    func poll(_ driver: inout DiscoveryDriver<FakeTarget>) async throws -> DiscoveryRound {
        let round = await driver.poll()
        return try XCTUnwrap(round)
    }

    func testRunPollsAtOnceThenAfterJitteredIntervalsAndStopsWithTheNode() async throws {
        let strategy = ScriptedStrategy([.success([a, b])])
        let target = FakeTarget(reads: 5)
        let clock = ManualClock()
        var driver = try DiscoveryDriver(
            strategy: strategy, target: target, settings: DiscoverySettings(interval: .seconds(2), jitter: 0.25),
            clock: clock.clock, seed: 7)
        await driver.run()
        XCTAssertEqual(target.joins.sorted(), [a, b], "each found peer joined once, then a member")
        // Five polls while the node runs, a sixth that finds it stopped, and no sleep after that.
        XCTAssertEqual(strategy.calls.withLock { $0 }, 6)
        XCTAssertEqual(clock.sleeps.count, 5)
        XCTAssertTrue(clock.sleeps.allSatisfy { $0 >= .milliseconds(1500) && $0 <= .milliseconds(2500) }, "\(clock.sleeps)")
        XCTAssertEqual(strategy.shutdowns.withLock { $0 }, 1)
    }

    func testAMemberThatDropsIsJoinedAgainOnTheNextPoll() async throws {
        let target = FakeTarget(members: [a])
        let clock = ManualClock()
        var driver = try DiscoveryDriver(
            strategy: StaticDiscovery([a, b]), target: target, settings: DiscoverySettings(interval: .seconds(1)),
            clock: clock.clock, seed: 1)
        let first = try await poll(&driver)
        XCTAssertEqual(first.plan?.joins, [b])
        XCTAssertEqual(first.discovered, [a, b])
        clock.advance(.seconds(1))
        let second = try await poll(&driver)
        XCTAssertEqual(second.plan?.joins, [])
        target.drop(a)  // `a` restarted: the overlay lost it
        clock.advance(.seconds(1))
        let third = try await poll(&driver)
        XCTAssertEqual(third.plan?.joins, [a])
        XCTAssertEqual(target.joins, [b, a])
    }

    func testAFailedPollJoinsNobodyAndTheNextOneWorks() async throws {
        let failure = DiscoveryError.dns(.timeout(server: "127.0.0.1:53", wait: .seconds(1), attempts: 2))
        let strategy = ScriptedStrategy([.failure(failure), .failure(failure), .success([a])])
        let target = FakeTarget()
        var quiet = Logger(label: "test")
        quiet.logLevel = .error
        var driver = try DiscoveryDriver(strategy: strategy, target: target, clock: ManualClock().clock, seed: 3, logger: quiet)
        for _ in 0..<2 {
            let round = try await poll(&driver)
            XCTAssertEqual(round.error, failure)
            XCTAssertNil(round.plan)
        }
        let recovered = try await poll(&driver)
        XCTAssertEqual(recovered.plan?.joins, [a])
        XCTAssertEqual(target.joins, [a])
    }

    func testCancellingTheRunEndsItsSleepAndShutsTheStrategyDown() async throws {
        let strategy = ScriptedStrategy([.success([])])
        var driver = try DiscoveryDriver(
            strategy: strategy, target: FakeTarget(), settings: DiscoverySettings(interval: .seconds(30)))
        let run = Task { await driver.run() }
        for _ in 0..<200 where strategy.calls.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let start = ContinuousClock.now
        run.cancel()
        await run.value
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(1))
        XCTAssertEqual(strategy.shutdowns.withLock { $0 }, 1)
    }

    func testInvalidSettingsAreRefusedWhenTheDriverIsMade() {
        XCTAssertThrowsError(
            try DiscoveryDriver(strategy: StaticDiscovery([a]), target: FakeTarget(), settings: DiscoverySettings(jitter: -1))
        ) { error in
            XCTAssertEqual(error as? DiscoveryError, .invalidSetting("jitter", "must be from 0 to 1, e.g. 0.2"))
        }
    }
}
