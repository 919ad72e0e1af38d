import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisTestSupport
import TrellisMembership
import TrellisWire
import XCTest

/// Cluster-wide overlay rollouts (`TrellisNode.rollOut`, what `trellis swap --cluster` calls)
/// on 16 nodes of one process over real TCP, while application messages flow between random
/// pairs the whole time.
final class ClusterSwapTests: XCTestCase {
    static let overlays = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays")
    static let nodeCount = 16
    /// The nodes whose `migrate` refuses the picky rollout: every node gets this list in its
    /// overlay config, as a topology file would give it.
    static let refusing: Set<String> = ["cs3", "cs8", "cs13"]
    static let migrateAnchor = "  migrate = function(old, old_version, ctx)\n"
    /// Failure detection that a loaded 2-core box, whose event loops stall for seconds, does
    /// not trip: members change only through the swaps.
    static let membership = MembershipSettings(heartbeatInterval: 500, failureTimeout: 15_000)

    /// A message's sender and receiver.
    struct Pair: Hashable, CustomStringConvertible {
        let from: PeerID
        let to: PeerID
        var description: String { "\(from) -> \(to)" }
    }

    /// Application messages sent and delivered per pair, and sends that threw.
    struct Ledger {
        var sent: [Pair: Int] = [:]
        var delivered: [Pair: Int] = [:]
        /// Messages sent while the cluster ran hyparview.
        var sentOnHyParView: [Pair: Int] = [:]
        var failedSends: [String] = []
    }

    /// A member event seen by `node`.
    struct ObservedEvent {
        let node: PeerID
        let event: MemberEvent
    }

    /// full_mesh.lua as version `version`; with `picky`, its `migrate` raises on the nodes
    /// named in the config's `refuse_migrate`.
    static func fullMesh(version: Int, picky: Bool = false) throws -> String {
        let shipped = try String(contentsOf: overlays.appendingPathComponent("full_mesh.lua"), encoding: .utf8)
        XCTAssertTrue(shipped.contains("  version = 1,") && shipped.contains(migrateAnchor), "full_mesh.lua changed shape")
        var source = shipped.replacingOccurrences(of: "  version = 1,", with: "  version = \(version),")
        if picky {
            source = source.replacingOccurrences(of: migrateAnchor, with: migrateAnchor + """
                    for _, name in ipairs(ctx.config.refuse_migrate or {}) do
                      if ctx.self:sub(1, #name + 1) == name .. "@" then error(name .. " is listed in refuse_migrate") end
                    end

                """)
        }
        return source
    }

    /// hyparview.lua with its periodic work (shuffles, promotions, retries) a minute apart:
    /// the views `migrate` builds stay as they are, so a member lost during a rollout is the
    /// rollout's doing, not the protocol repairing its views.
    static func hyParViewWithoutTicks() throws -> String {
        let shipped = try String(contentsOf: overlays.appendingPathComponent("hyparview.lua"), encoding: .utf8)
        XCTAssertTrue(shipped.contains("  tick = 1000,"), "hyparview.lua changed shape")
        return shipped.replacingOccurrences(of: "  tick = 1000,", with: "  tick = 60000,")
    }

    /// `nodeCount` nodes on full_mesh, joined through the first, once each sees them all.
    func startFullMesh(group: any EventLoopGroup) async throws -> [TrellisNode] {
        var nodes: [TrellisNode] = []
        for index in 1...Self.nodeCount {
            var configuration = try NodeConfiguration(
                name: "cs\(index)", clusterName: "cswap", cookie: "c",
                overlayPath: Self.overlays.appendingPathComponent("full_mesh.lua").path)
            configuration.overlayConfig = .map(["refuse_migrate": .array(Self.refusing.sorted().map(Value.string))])
            configuration.membership = Self.membership
            let node = try await TrellisNode.start(configuration, group: group)
            if let seed = nodes.first { await node.join(seed.id) }
            nodes.append(node)
        }
        try await waitUntil("every node sees all \(Self.nodeCount) members", within: .seconds(15)) {
            await self.everyNodeSeesAll(nodes)
        }
        return nodes
    }

    func everyNodeSeesAll(_ nodes: [TrellisNode]) async -> Bool {
        for node in nodes where await node.members.count != Self.nodeCount { return false }
        return true
    }

    func membersOfEveryNode(_ nodes: [TrellisNode]) async -> [PeerID: Set<PeerID>] {
        var members: [PeerID: Set<PeerID>] = [:]
        for node in nodes { members[node.id] = Set(await node.members) }
        return members
    }

    func overlayVersions(_ nodes: [TrellisNode]) async -> [String: String] {
        var versions: [String: String] = [:]
        for node in nodes { versions[node.id.name] = await node.overlayVersion }
        return versions
    }

    /// Runs `rollout`; checks that it reached every node and that no node lost a member it had
    /// both before and after.
    func rollOutChecked(
        _ what: String, nodes: [TrellisNode], events: NIOLockedValueBox<[ObservedEvent]>,
        _ rollout: () async -> [NodeSwapResult]
    ) async -> [NodeSwapResult] {
        let before = await membersOfEveryNode(nodes)
        let mark = events.withLockedValue { $0.count }
        let results = await rollout()
        let after = await membersOfEveryNode(nodes)
        let dropped = events.withLockedValue { Array($0[mark...]) }.compactMap { observed -> String? in
            guard case .down(let peer) = observed.event, before[observed.node]?.contains(peer) == true,
                  after[observed.node]?.contains(peer) == true else { return nil }
            return "\(observed.node) lost \(peer)"
        }
        XCTAssertEqual(dropped, [], "\(what): a member kept through the swap went down")
        XCTAssertEqual(Set(results.map(\.node)), Set(nodes.map(\.id)), "\(what) did not reach every node")
        return results
    }

    /// full_mesh -> hyparview -> full_mesh, then a version whose migrate refuses on three
    /// nodes, rolled out while every node sends to random peers: every message sent arrives
    /// (those to peers hyparview does not count as members too), no rollout drops a member
    /// that stays, and the refusing nodes report why and stay on the old version while the
    /// others switch.
    func testRollOutsUnderTrafficLoseNoMessageAndDropNoContinuingMember() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(group: group)
        let ids = nodes.map(\.id)

        let events = NIOLockedValueBox<[ObservedEvent]>([])
        let watchers = nodes.map { node in
            Task {
                for await event in await node.memberEvents() {
                    events.withLockedValue { $0.append(ObservedEvent(node: node.id, event: event)) }
                }
            }
        }
        let ledger = NIOLockedValueBox(Ledger())
        let consumers = nodes.map { node in
            Task {
                for await message in node.messages {
                    ledger.withLockedValue { $0.delivered[Pair(from: message.from, to: node.id), default: 0] += 1 }
                }
            }
        }
        let sending = NIOLockedValueBox(true)
        let onHyParView = NIOLockedValueBox(false)
        let sendersDone = NIOLockedValueBox(0)
        for node in nodes {
            Task {
                defer { sendersDone.withLockedValue { $0 += 1 } }
                let others = ids.filter { $0 != node.id }
                // Bounded: at 2 ms or more a message, this outlasts the test many times over.
                for round in 0..<100_000 {
                    guard sending.withLockedValue({ $0 }) else { break }
                    let pair = Pair(from: node.id, to: others.randomElement()!)
                    let hyParView = onHyParView.withLockedValue { $0 }
                    do {
                        try await node.send(.int(Int64(round)), to: pair.to)
                        ledger.withLockedValue { ledger in
                            ledger.sent[pair, default: 0] += 1
                            if hyParView { ledger.sentOnHyParView[pair, default: 0] += 1 }
                        }
                    } catch {
                        ledger.withLockedValue { $0.failedSends.append("\(pair): \(error)") }
                    }
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))

        let hyParView = try Self.hyParViewWithoutTicks()
        let toHyParView = await rollOutChecked("full_mesh -> hyparview", nodes: nodes, events: events) {
            await nodes[0].rollOut(kind: "overlay", source: hyParView, fileName: "hyparview.lua", timeout: .seconds(3))
        }
        XCTAssertTrue(toHyParView.allSatisfy { if case .success = $0.outcome { true } else { false } }, "\(toHyParView)")
        let versionsOnHyParView = await overlayVersions(nodes)
        XCTAssertEqual(Set(versionsOnHyParView.values), ["hyparview.lua v4"], "\(versionsOnHyParView)")
        let hyParViewMembers = await membersOfEveryNode(nodes)
        let crowded = hyParViewMembers.filter { $0.value.count > 6 }.keys.map(\.name).sorted()
        XCTAssertEqual(crowded, [], "hyparview keeps at most 5 active peers as members")
        onHyParView.withLockedValue { $0 = true }
        try await Task.sleep(for: .seconds(1))
        onHyParView.withLockedValue { $0 = false }

        let fullMesh = try Self.fullMesh(version: 1)
        let toFullMesh = await rollOutChecked("hyparview -> full_mesh", nodes: nodes, events: events) {
            await nodes[5].rollOut(kind: "overlay", source: fullMesh, fileName: "full_mesh.lua", timeout: .seconds(3))
        }
        XCTAssertTrue(toFullMesh.allSatisfy { if case .success = $0.outcome { true } else { false } }, "\(toFullMesh)")
        try await waitUntil("every node sees all members again", within: .seconds(10)) { await self.everyNodeSeesAll(nodes) }

        let picky = try Self.fullMesh(version: 3, picky: true)
        let mixed = await rollOutChecked("a rollout refused on some nodes", nodes: nodes, events: events) {
            await nodes[7].rollOut(kind: "overlay", source: picky, fileName: "full_mesh.lua", timeout: .seconds(3))
        }
        for result in mixed {
            switch result.outcome {
            case .success(let report):
                XCTAssertFalse(Self.refusing.contains(result.node.name), "\(result.node) switched: \(report)")
            case .failure(let refusal):
                XCTAssertTrue(Self.refusing.contains(result.node.name), "\(result.node) refused: \(refusal)")
                XCTAssertTrue(refusal.description.contains("full_mesh.lua"), "\(refusal)")
                XCTAssertTrue(refusal.description.contains("\(result.node.name) is listed in refuse_migrate"), "\(refusal)")
            }
        }
        for (name, version) in await overlayVersions(nodes) {
            XCTAssertEqual(version, Self.refusing.contains(name) ? "full_mesh.lua v1" : "full_mesh.lua v3", name)
        }

        sending.withLockedValue { $0 = false }
        try await waitUntil("every sender has stopped", within: .seconds(10)) { sendersDone.withLockedValue { $0 } == nodes.count }
        try await waitUntil("every message sent has arrived", within: .seconds(10)) {
            ledger.withLockedValue { $0.delivered == $0.sent }
        }
        let final = ledger.withLockedValue { $0 }
        for (pair, count) in final.sent where final.delivered[pair] != count {
            XCTFail("\(pair): sent \(count), delivered \(final.delivered[pair] ?? 0)")
        }
        XCTAssertEqual(Set(final.delivered.keys).subtracting(final.sent.keys), [], "delivered without being sent")
        XCTAssertEqual(final.failedSends, [], "sends to reachable peers failed")
        XCTAssertEqual(final.sent.count, Self.nodeCount * (Self.nodeCount - 1), "traffic reached every pair")
        var scriptErrors = 0
        for node in nodes { scriptErrors += await node.scriptErrors }
        XCTAssertEqual(scriptErrors, 0, "no overlay callback failed, mixed versions included")
        let toNonMembers = final.sentOnHyParView.filter { hyParViewMembers[$0.key.from]?.contains($0.key.to) == false }
        XCTAssertGreaterThan(toNonMembers.count, 50, "pairs that were not members under hyparview exchanged messages")
        print("""
            ClusterSwapTests: \(final.sent.values.reduce(0, +)) messages sent, \(final.delivered.values.reduce(0, +)) \
            delivered, over \(final.sent.count) pairs; under hyparview \(toNonMembers.values.reduce(0, +)) went \
            to non-members over \(toNonMembers.count) pairs
            """)

        for task in watchers + consumers { task.cancel() }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}
