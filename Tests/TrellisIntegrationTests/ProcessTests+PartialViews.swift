import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisTestSupport
import TrellisWire
import XCTest

/// Handoffs between nodes whose views of the cluster differ.
extension ProcessTests {
    /// An overlay where a node's members are itself, the seed it joined through and the nodes
    /// that joined through it: nobody learns of anyone else, so views stay partial.
    static let introductions = """
        return {
          name = "introductions", version = 1,
          init = function(ctx) return { members = { ctx.self } } end,
          join = function(s, seed)
            s.members[#s.members + 1] = seed
            return s, s.members, { { to = seed, msg = "hello" } }
          end,
          leave = function(s) return s end,
          on_message = function(s, from)
            for _, peer in ipairs(s.members) do if peer == from then return s end end
            s.members[#s.members + 1] = from
            return s, s.members
          end,
          on_tick = function(s) return s end,
        }
        """

    func startIntroducedNode(_ name: String, group: any EventLoopGroup) async throws -> TrellisNode {
        let configuration = NodeConfiguration(
            name: name, clusterName: "processes", cookie: "c", overlaySource: Self.introductions, overlayFileName: "introductions.lua")
        let node = try await TrellisNode.start(configuration, group: group)
        await node.serve("counter", with: CounterBehavior())
        return node
    }

    /// A node that knows only some holders hands its processes to the one it knows; that node
    /// places some of them on a holder the sender has never heard of, and passes them on
    /// there instead of keeping them where no call will ever reach them.
    func testProcessesHandedToTheWrongOwnerGoOnToTheRightOne() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let (relay, other) = (try await startIntroducedNode("r1", group: group), try await startIntroducedNode("x1", group: group))
        await other.join(relay.id)
        try await waitForAgreement([relay, other], "counter", servers: 2)
        let sender = try await startIntroducedNode("s1", group: group)
        let ids = (0..<200).map { "id\($0)" }
        for id in ids { _ = try await sender.call("counter", id: id, .int(5)) }
        await sender.join(relay.id)
        try await waitUntil("the sender sees two holders and the relay three") {
            sender.shardTable(for: "counter").map { Set($0.owners).count } == 2
                && relay.shardTable(for: "counter").map { Set($0.owners).count } == 3
        }
        let (senderTable, relayTable) = (sender.shardTable(for: "counter")!, relay.shardTable(for: "counter")!)
        let passedOn = ids.filter { senderTable.owner(of: $0) == relay.id && relayTable.owner(of: $0) == other.id }
        XCTAssertGreaterThan(passedOn.count, 0, "the views place some ids differently")
        try await waitUntil("the misplaced processes reach their owner") {
            await other.activeProcesses(of: "counter") == passedOn.count
        }
        let count = try await relay.call("counter", id: passedOn[0], .int(0))
        XCTAssertEqual(count, .int(5), "the process kept its state")
        for node in [sender, relay, other] { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// A joiner handed processes before its own membership has met anyone is still a
    /// newcomer: it holds the calls for every shard it takes until each holder's handoff has
    /// arrived. (Before, the processes it held made it count as a node that had served alone,
    /// so it served calls for shards whose processes were still on their way, on fresh
    /// processes that the late handoff then replaced: increments were lost.)
    func testAJoinerHandedProcessesBeforeItMetAnyoneStillWaitsForEveryHolder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes = try await startCounterCluster(3, group: group)
        let ids = (0..<120).map { "j\($0)" }
        for id in ids { _ = try await nodes[0].call("counter", id: id, .int(5)) }
        let joiner = try await startNode("p4", group: group)
        await joiner.serve("counter", with: CounterBehavior())
        try await joiner.injectFaults(FaultPlan(rules: [
            FaultRule(.delay(milliseconds: 300, jitter: 0), channel: "membership"),
            FaultRule(.delay(milliseconds: 800, jitter: 0), from: ["p2"], channel: "processes"),
        ]))
        let done = NIOLockedValueBox(false)
        let isDone: @Sendable () -> Bool = { done.withLockedValue { $0 } }
        let halves = [Array(ids[..<60]), Array(ids[60...])]
        let callers = [nodes[0], nodes[2]].enumerated().map { index, caller in
            let mine = halves[index]
            return Task { await keepCalling(caller, mine, until: isDone) }
        }
        await joiner.join(nodes[0].id)
        nodes.append(joiner)
        try await waitForAgreement(nodes, "counter", servers: 4)
        try await Task.sleep(for: .milliseconds(1_500))
        done.withLockedValue { $0 = true }
        var tally = CallTally()
        for caller in callers {
            let part = await caller.value
            tally.failures += part.failures
            tally.counts.merge(part.counts) { $0 + $1 }
        }
        XCTAssertEqual(tally.failures, [])
        var wrong: [String] = []
        for id in ids {
            let count = try await nodes[0].call("counter", id: id, .int(0))
            if count != .int(5 + (tally.counts[id] ?? 0)) { wrong.append("\(id)=\(count), expected \(5 + (tally.counts[id] ?? 0))") }
        }
        XCTAssertEqual(wrong, [], "no increment lost")
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}
