import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import Trellis
import TrellisTestSupport
import TrellisWire
import XCTest

/// What `keepCalling` saw: the calls that failed and, per id, how many succeeded.
struct CallTally: Sendable {
    var failures: [String] = []
    var counts: [String: Int64] = [:]
}

/// Calls `ids` on `caller` every 20 ms, adding 1 to each counter, until `isDone`.
func keepCalling(_ caller: TrellisNode, _ ids: [String], until isDone: @escaping @Sendable () -> Bool) async -> CallTally {
    var tally = CallTally()
    while !isDone() {
        for id in ids {
            do {
                _ = try await caller.call("counter", id: id, .int(1))
                tally.counts[id, default: 0] += 1
            } catch {
                tally.failures.append("\(error)")
            }
        }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return tally
}

/// Calls from a node that hears late, or never, that an owner left.
extension ProcessTests {
    /// Lets `calling` run 200 ms more, stops it, and checks that none of its calls failed and
    /// that each counter in `ids` holds every increment that `caller` saw succeed.
    func stopCalling(
        _ calling: Task<CallTally, Never>, done: NIOLockedValueBox<Bool>, andCheck ids: [String], on caller: TrellisNode
    ) async throws {
        try await Task.sleep(for: .milliseconds(200))
        done.withLockedValue { $0 = true }
        let tally = await calling.value
        XCTAssertEqual(tally.failures, [], "no call may fail while owners leave")
        for id in ids {
            let count = try await caller.call("counter", id: id, .int(0))
            XCTAssertEqual(count, .int(tally.counts[id] ?? -1), "every increment of \(id) kept")
        }
    }

    /// The leaver stays until the caller, which hears of the leave a second late, has let go
    /// of it: meanwhile it forwards the caller's calls to the new owners. No call fails and
    /// no count is lost. (Before, the leaver stopped after a fixed 300 ms and the caller's
    /// calls failed until it heard.)
    func testALeaverStaysUntilACallerThatHearsLateHasLetGo() async throws {
        try await leaveWhileCalling(hearing: FaultRule(.delay(milliseconds: 1_000, jitter: 0), from: ["p3"], channel: "membership"))
    }

    /// An overlay that forgets a peer only half a second after it went down (its members are
    /// everyone it heard from), so that calls meet a dead owner that their table still names.
    static let slowToForget = """
        local function list(set)
          local peers = {}
          for peer in pairs(set) do peers[#peers + 1] = peer end
          return peers
        end
        return {
          name = "slow_to_forget", version = 1, tick = 100,
          init = function(ctx) return { members = { [ctx.self] = true }, down = {}, gone = {} } end,
          join = function(s, seed) return s, nil, { { to = seed, msg = list(s.members) } } end,
          leave = function(s) return s end,
          -- A message lists the members its sender knows: greet those we did not know.
          on_message = function(s, from, known)
            local new = {}
            known[#known + 1] = from
            for _, peer in ipairs(known) do
              if not s.members[peer] and not s.gone[peer] then s.members[peer] = true; new[#new + 1] = peer end
            end
            if #new == 0 then return s end
            local out = {}
            for _, peer in ipairs(new) do out[#out + 1] = { to = peer, msg = list(s.members) } end
            return s, list(s.members), out
          end,
          on_down = function(s, peer) s.down[peer] = s.down[peer] or "seen"; return s end,
          on_tick = function(s, now)
            local changed = false
            for peer, since in pairs(s.down) do
              if since == "seen" then s.down[peer] = now
              elseif now - since >= 500 then s.members[peer], s.down[peer], s.gone[peer], changed = nil, nil, true, true end
            end
            if changed then return s, list(s.members) end
            return s
          end,
        }
        """

    /// A call to an owner that died, which the caller's table still names, cannot be sent:
    /// it waits for the shard's next owner and starts the process afresh there, instead of
    /// failing. (Before, it failed with "unreachable" at once.)
    func testACallThatCannotReachADeadOwnerGoesToTheShardsNextOwner() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let registry = PrometheusCollectorRegistry()
        let nodes = try await startCounterNodes(["s1", "s2", "s3"].map { name in
            var configuration = NodeConfiguration(
                name: name, clusterName: "processes", cookie: "c", overlaySource: Self.slowToForget, overlayFileName: "slow.lua")
            if name == "s1" { configuration.metricsFactory = PrometheusMetricsFactory(registry: registry) }
            return configuration
        }, group: group)
        let (caller, victim) = (nodes[0], nodes[2])
        let ids = (0..<60).map { "d\($0)" }.filter { caller.owner(of: $0, capability: "counter") == victim.id }
        XCTAssertFalse(ids.isEmpty)
        for id in ids { _ = try await caller.call("counter", id: id, .int(5)) }
        await victim.stop()
        try await Task.sleep(for: .milliseconds(150))
        XCTAssertEqual(caller.owner(of: ids[0], capability: "counter"), victim.id, "the caller has not forgotten the victim yet")
        for id in ids {
            let count = try await caller.call("counter", id: id, .int(1))
            XCTAssertEqual(count, .int(1), "\(id) starts afresh on its new owner")
        }
        let rerouted = MetricsEndpointTests.parse(registry.emitToString()).first {
            $0.name == "trellis_process_calls_total" && $0.labels["kind"] == "call" && $0.labels["route"] == "rerouted"
        }
        XCTAssertEqual(rerouted?.value, 1, "the first call waited for the new owner; the others found it")
        for node in nodes[0...1] { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// The caller never hears the goodbye, and with its long failure timeout it does not
    /// notice the silence either: the leaver waits `drainLimit` for it, then tells it that it
    /// is going away. The calls that were on their way get their replies or are refused as not
    /// handled, and go to the new owners once the caller sees the connection close. None
    /// fails and no count is lost.
    func testALeaverNobodyHeardLeavesNoCallInDoubt() async throws {
        try await leaveWhileCalling(
            hearing: FaultRule(.drop, from: ["p3"], channel: "membership"), callerFailureTimeout: 20_000)
    }

    /// Starts a node per configuration, each serving `counter` and joining through the first,
    /// and waits until they agree on its table.
    func startCounterNodes(_ configurations: [NodeConfiguration], group: any EventLoopGroup) async throws -> [TrellisNode] {
        var nodes: [TrellisNode] = []
        for configuration in configurations {
            let node = try await TrellisNode.start(configuration, group: group)
            // A test that fails half-way must not leave its nodes heartbeating into later tests.
            addTeardownBlock { await node.stop() }
            await node.serve("counter", with: CounterBehavior())
            if let seed = nodes.first { await node.join(seed.id) }
            nodes.append(node)
        }
        try await waitForAgreement(nodes, "counter", servers: configurations.count)
        return nodes
    }

    /// `caller` keeps calling ids that `leaver` owns while `leaver` leaves, and hears from it
    /// through `fault`.
    func leaveWhileCalling(hearing fault: FaultRule, callerFailureTimeout: Int64 = 2_000) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterNodes(["p1", "p2", "p3"].map { name in
            var configuration = try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
            if name == "p1" { configuration.membership.failureTimeout = callerFailureTimeout }
            return configuration
        }, group: group)
        let (caller, leaver) = (nodes[0], nodes[2])
        let candidates = (0..<200).map { "g\($0)" }.filter { caller.owner(of: $0, capability: "counter") == leaver.id }
        XCTAssertGreaterThan(candidates.count, 10)
        try await caller.injectFaults(FaultPlan(rules: [fault]))
        let done = NIOLockedValueBox(false)
        let isDone: @Sendable () -> Bool = { done.withLockedValue { $0 } }
        let ids = Array(candidates.prefix(10))
        let calling = Task { await keepCalling(caller, ids, until: isDone) }
        try await Task.sleep(for: .milliseconds(200))
        await leaver.leave()
        try await waitUntil("the caller routes by a table without the leaver", within: .seconds(10)) {
            caller.shardTable(for: "counter").map { !$0.owners.contains(leaver.id) } ?? false
        }
        try await stopCalling(calling, done: done, andCheck: ids, on: caller)
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}

/// Several nodes leaving at once, as when a cluster is scaled down.
extension ProcessTests {
    /// Two of five nodes leave at the same moment while a third keeps calling counters, some
    /// of which move from one leaver to the other's shards and on: each leaver hands off by
    /// a table that may still name the other. No call fails and no count is lost. (Before
    /// leaving nodes announced it, every run lost 6 to 8 increments of each id; before calls
    /// that bounce between two tables waited for a new one, and handoffs stopped naming shards
    /// still on their way, about one run in a hundred lost one increment.)
    func testTwoNodesLeavingAtOnceLoseNoCallAndNoCount() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterNodes(try ["q1", "q2", "q3", "q4", "q5"].map { name in
            try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        }, group: group)
        let (caller, leavers) = (nodes[0], [nodes[3], nodes[4]])
        let leaverIDs = Set(leavers.map(\.id))
        let ids = Array((0..<400).map { "s\($0)" }.filter { caller.owner(of: $0, capability: "counter").map(leaverIDs.contains) ?? false }.prefix(16))
        XCTAssertEqual(ids.count, 16)
        let done = NIOLockedValueBox(false)
        let isDone: @Sendable () -> Bool = { done.withLockedValue { $0 } }
        let calling = Task { await keepCalling(caller, ids, until: isDone) }
        try await Task.sleep(for: .milliseconds(200))
        async let first: Void = leavers[0].leave()
        async let second: Void = leavers[1].leave()
        _ = await (first, second)
        try await waitUntil("the caller routes by a table without the leavers", within: .seconds(10)) {
            caller.shardTable(for: "counter").map { $0.holders.isDisjoint(with: leaverIDs) } ?? false
        }
        try await stopCalling(calling, done: done, andCheck: ids, on: caller)
        for node in nodes[0...2] { await node.stop() }
        try await group.shutdownGracefully()
    }
}
