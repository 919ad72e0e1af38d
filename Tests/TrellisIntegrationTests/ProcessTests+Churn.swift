import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Trellis
import XCTest

/// Nodes joining and leaving in turn, as a cluster is scaled up and down.
extension ProcessTests {
    /// One step of a scale plan: nodes that join, and nodes that leave, at the same moment.
    struct ScaleStep {
        var joining = 0
        var leaving = 0
    }

    /// While a node that stays keeps calling 24 counters, nodes join and leave gracefully in
    /// steps: one joins, one leaves, two join, two leave, one joins while another leaves, one
    /// leaves. No call fails and every increment is counted.
    ///
    /// A soak test, run only with `TRELLIS_SOAK=1` (run it in a loop): it found the faults of
    /// handoff while nodes join and leave at once (README, "Handoff"): a node that joined
    /// while another left, or alongside another joiner, started afresh a process whose state
    /// was still on its way to it, from the leaver through a third node or from its previous
    /// owner while the other joiner claimed its shard.
    func testCountsSurviveNodesJoiningAndLeavingInTurn() async throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TRELLIS_SOAK"] == "1", "a soak test: set TRELLIS_SOAK=1")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let configuration = { @Sendable (name: String) in
            try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        }
        var nodes = try await startCounterNodes(try ["c1", "c2", "c3"].map(configuration), group: group)
        let caller = nodes[0]
        let ids = (0..<24).map { "k\($0)" }
        let done = NIOLockedValueBox(false)
        let calling = Task { await keepCalling(caller, ids, until: { done.withLockedValue { $0 } }) }
        let plan = [
            ScaleStep(joining: 1), ScaleStep(leaving: 1), ScaleStep(joining: 2), ScaleStep(leaving: 2),
            ScaleStep(joining: 1, leaving: 1), ScaleStep(leaving: 1),
        ]
        var named = nodes.count
        for step in plan {
            try await Task.sleep(for: .milliseconds(300))
            let leavers = Array(nodes.suffix(step.leaving))
            nodes.removeLast(step.leaving)
            let names = (0..<step.joining).map { "c\(named + 1 + $0)" }
            named += step.joining
            let joiners = try await withThrowingTaskGroup(of: TrellisNode?.self) { tasks in
                for leaver in leavers { tasks.addTask { await leaver.leave(); return nil } }
                for name in names {
                    tasks.addTask {
                        let node = try await TrellisNode.start(try configuration(name), group: group)
                        await node.serve("counter", with: CounterBehavior())
                        await node.join(caller.id)
                        return node
                    }
                }
                return try await tasks.reduce(into: [TrellisNode]()) { if let joiner = $1 { $0.append(joiner) } }
            }
            nodes += joiners
            try await waitForAgreement(nodes, "counter", servers: nodes.count)
        }
        try await stopCalling(calling, done: done, andCheck: ids, on: caller)
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}
