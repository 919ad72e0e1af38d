import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisWire
import XCTest

/// Broadcast over a HyParView overlay on real TCP: with active views of 3 among 10 nodes,
/// messages need several hops, and every node must deliver each message exactly once.
final class BroadcastTests: XCTestCase {
    static let hyparview = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays/hyparview.lua").path

    func testEveryNodeDeliversEveryBroadcastOnce() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes: [TrellisNode] = []
        for index in 1...10 {
            var configuration = try NodeConfiguration(name: "b\(index)", clusterName: "broadcast", cookie: "c", overlayPath: Self.hyparview)
            configuration.overlayConfig = .map(["active": 3, "passive": 8])
            let node = try await TrellisNode.start(configuration, group: group)
            if let seed = nodes.first {
                await node.join(seed.id)
                try await Task.sleep(for: .milliseconds(20))
            }
            nodes.append(node)
        }
        try await waitUntilConnected(nodes)
        let firstMembers = await nodes[0].members
        XCTAssertLessThan(firstMembers.count, nodes.count, "some nodes must be more than one hop from b1")

        let received = NIOLockedValueBox<[PeerID: [BroadcastMessage]]>([:])
        let collectors = nodes.map { node in
            Task {
                for await message in node.broadcasts { received.withLockedValue { $0[node.id, default: []].append(message) } }
            }
        }
        for i in 0..<50 { nodes[i % 3].broadcast(.int(Int64(i))) }
        let deadline = ContinuousClock.now + .seconds(30)
        while received.withLockedValue({ $0.values.map(\.count).reduce(0, +) }) < 50 * 9, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        let all = received.withLockedValue { $0 }
        for (index, node) in nodes.enumerated() {
            let expected = (0..<50).filter { $0 % 3 != index }.map { Value.int(Int64($0)) }
            let got = (all[node.id] ?? []).map(\.payload)
            XCTAssertEqual(Set(got), Set(expected), "node \(index + 1) missed broadcasts")
            XCTAssertEqual(got.count, expected.count, "node \(index + 1) delivered a broadcast twice")
        }
        for collector in collectors { collector.cancel() }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// Waits until the members graph of `nodes` is one component with symmetric views, and has
    /// stayed the same for half a second: right after the joins, neighbours still move, and a
    /// flood sent while a node is between two neighbours may not reach it.
    private func waitUntilConnected(_ nodes: [TrellisNode]) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        var settled: (graph: [PeerID: Set<PeerID>], since: ContinuousClock.Instant)?
        while ContinuousClock.now < deadline {
            var graph: [PeerID: Set<PeerID>] = [:]
            for node in nodes { graph[node.id] = Set(await node.members).subtracting([node.id]) }
            var reached: Set<PeerID> = []
            var frontier = [nodes[0].id]
            while let next = frontier.popLast() {
                guard reached.insert(next).inserted else { continue }
                frontier += graph[next] ?? []
            }
            let symmetric = graph.allSatisfy { node, peers in peers.allSatisfy { graph[$0]?.contains(node) == true } }
            if reached.count == nodes.count && symmetric {
                if let current = settled, current.graph == graph {
                    if ContinuousClock.now - current.since >= .milliseconds(500) { return }
                } else {
                    settled = (graph, ContinuousClock.now)
                }
            } else {
                settled = nil
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("the overlay did not settle into one symmetric component within 15 s")
    }
}
