import Foundation
import NIOCore
import NIOPosix
import Trellis
import TrellisWire
import XCTest

/// Network partitions on real nodes over real TCP: `setUnreachable` cuts a node off from chosen
/// peers (the overlay sees the connections go down) and an empty set heals it.
final class PartitionTests: XCTestCase {
    static let fullMesh = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays/full_mesh.lua").path

    /// A full-mesh node that answers every request with "pong".
    func startNode(_ name: String, group: any EventLoopGroup) async throws -> TrellisNode {
        let configuration = try NodeConfiguration(name: name, clusterName: "partition", cookie: "c", overlayPath: Self.fullMesh)
        let node = try await TrellisNode.start(configuration, group: group)
        node.onRequest { _, responder in responder.reply("pong") }
        return node
    }

    func testAPartitionSplitsTheMeshAndHealingJoinsItAgain() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes: [TrellisNode] = []
        for name in ["a", "b", "c", "d"] { nodes.append(try await startNode(name, group: group)) }
        let (a, b, c, d) = (nodes[0], nodes[1], nodes[2], nodes[3])
        for node in [b, c, d] { await node.join(a.id) }
        let everyone = Set(nodes.map(\.id))
        try await waitForMembers([(a, everyone), (b, everyone), (c, everyone), (d, everyone)], within: .seconds(5), "before the partition")

        let left: Set<PeerID> = [a.id, b.id], right: Set<PeerID> = [c.id, d.id]
        for node in [a, b] { await node.setUnreachable(right) }
        for node in [c, d] { await node.setUnreachable(left) }
        try await waitForMembers([(a, left), (b, left), (c, right), (d, right)], within: .seconds(3), "after the partition")
        // Past a tick of full_mesh (1 s), whose hellos to lost peers must fail at the cut.
        try await Task.sleep(for: .milliseconds(1_200))
        try await waitForMembers([(a, left), (b, left), (c, right), (d, right)], within: .zero, "holding the partition")

        do {
            try await a.send("across the cut", to: c.id)
            XCTFail("a send across the partition must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("partitioned"), "\(error)")
        }
        do {
            _ = try await d.request("across the cut", to: b.id, timeout: .seconds(1))
            XCTFail("a request across the partition must fail")
        } catch {
            XCTAssertTrue("\(error)".contains("partitioned"), "\(error)")
        }

        for node in nodes { await node.setUnreachable([]) }
        await a.join(c.id)
        await d.join(b.id)
        try await waitForMembers([(a, everyone), (b, everyone), (c, everyone), (d, everyone)], within: .seconds(5), "after healing")
        let reply = try await a.request("ping", to: c.id, timeout: .seconds(2))
        XCTAssertEqual(reply, "pong", "messages cross the healed cut")

        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// The cut holds on one side alone: `a` blocks `b` while `b` does not block `a`, so `a`
    /// closes `b`'s connection and refuses its new handshakes; `c` still connects to `a`.
    func testABlockedPeersHandshakesAreRefusedWhileOthersStillConnect() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await startNode("a", group: group)
        let b = try await startNode("b", group: group)
        let c = try await startNode("c", group: group)
        await b.join(a.id)
        try await waitForMembers([(a, [a.id, b.id]), (b, [a.id, b.id])], within: .seconds(5), "before the partition")
        let beforeCut = try await b.request("ping", to: a.id, timeout: .seconds(2))
        XCTAssertEqual(beforeCut, "pong")

        await a.setUnreachable([b.id])
        try await waitForMembers([(a, [a.id]), (b, [b.id])], within: .seconds(3), "after a cut itself off from b")
        // b's request connection was closed by a; the first request may meet it still closing,
        // the next ones dial and must be refused in the handshake.
        var refusals: [String] = []
        for _ in 0..<3 {
            do {
                _ = try await b.request("ping", to: a.id, timeout: .seconds(1))
                XCTFail("a must refuse b")
            } catch {
                refusals.append("\(error)")
            }
        }
        XCTAssertTrue(refusals.last?.contains("handshake rejected") ?? false, "\(refusals)")
        XCTAssertTrue(refusals.last?.contains("partitioned") ?? false, "\(refusals)")

        await c.join(a.id)
        try await waitForMembers([(a, [a.id, c.id]), (c, [a.id, c.id])], within: .seconds(5), "c joining a")
        let fromC = try await c.request("ping", to: a.id, timeout: .seconds(2))
        XCTAssertEqual(fromC, "pong")
        try? await b.send("from b", to: a.id)
        try await c.send("from c", to: a.id)
        let collector = Task {
            var senders: [PeerID] = []
            for await message in a.messages {
                senders.append(message.from)
                if message.from == c.id { break }
            }
            return senders
        }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(3))
            collector.cancel()
        }
        let senders = await collector.value
        watchdog.cancel()
        XCTAssertEqual(senders, [c.id], "nothing from b is delivered")

        await a.setUnreachable([])
        // b's last send may still be on a connection a refused before the heal: the first
        // request can meet that refusal; a new connection must then be accepted.
        var afterHeal: Value?
        var errors: [String] = []
        for _ in 0..<3 where afterHeal == nil {
            do {
                afterHeal = try await b.request("ping", to: a.id, timeout: .seconds(1))
            } catch {
                errors.append("\(error)")
            }
        }
        XCTAssertEqual(afterHeal, "pong", "healed, yet b's requests failed: \(errors)")
        await b.join(a.id)
        let all: Set<PeerID> = [a.id, b.id, c.id]
        try await waitForMembers([(a, all), (b, all), (c, all)], within: .seconds(5), "after healing")

        for node in [a, b, c] { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// Polls until each node's members are exactly as expected (at least once, so `.zero`
    /// checks the present); fails with what was seen.
    private func waitForMembers(
        _ expected: [(TrellisNode, Set<PeerID>)], within limit: Duration, _ stage: String,
        file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let deadline = ContinuousClock.now + limit
        var seen: [PeerID: Set<PeerID>] = [:]
        repeat {
            seen = [:]
            for (node, _) in expected { seen[node.id] = Set(await node.members) }
            if expected.allSatisfy({ seen[$0.0.id] == $0.1 }) { return }
            try await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        let report = seen.keys.sorted().map { "\($0): \(seen[$0, default: []].map(\.description).sorted())" }
        XCTFail("members \(stage) not as expected within \(limit); saw \(report)", file: file, line: line)
    }
}
