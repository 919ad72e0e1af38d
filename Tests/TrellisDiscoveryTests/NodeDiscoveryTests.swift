import Foundation
import NIOCore
import NIOPosix
import Trellis
import TrellisTestSupport
import XCTest

/// Real nodes on 127.0.0.1 running full_mesh.lua that form a cluster through discovery alone,
/// and heal through re-polling: nobody calls `join`.
final class NodeDiscoveryTests: XCTestCase {
    static let fullMesh = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays/full_mesh.lua").path
    static let service = "_trellis._tcp.trellis.test"
    /// Fast polls for a test; the defaults are 5 s and 1–60 s.
    static let polling = DiscoverySettings(
        interval: .milliseconds(200), jitter: 0.2, rejoinBackoff: .milliseconds(100), maxRejoinBackoff: .milliseconds(400))

    let group = MultiThreadedEventLoopGroup.singleton
    var nodes: [TrellisNode] = []
    var dnsmasq: DNSMasq?

    override func tearDown() async throws {
        for node in nodes { await node.stop() }
        nodes = []
        dnsmasq?.stop()
        dnsmasq = nil
    }

    func startNode(_ name: String, port: Int = 0, cluster: String) async throws -> TrellisNode {
        var configuration = try NodeConfiguration(name: name, clusterName: cluster, cookie: "c", overlayPath: Self.fullMesh)
        configuration.port = port
        configuration.logger.logLevel = .warning
        let node = try await TrellisNode.start(configuration, group: group)
        nodes.append(node)
        return node
    }

    /// Waits (at most `seconds`) until each node's members are exactly `nodes`' ids.
    func waitForMesh(_ nodes: [TrellisNode], within seconds: Int, _ what: String) async throws {
        let everyone = Set(nodes.map(\.id))
        for _ in 0..<(seconds * 50) {
            var done = true
            for node in nodes where Set(await node.members) != everyone { done = false }
            if done { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        var seen: [String] = []
        for node in nodes { seen.append("\(node.id.name) sees \(await node.members.map(\.name))") }
        XCTFail("\(what): no full mesh in \(seconds) s; \(seen.joined(separator: "; "))")
        throw CancellationError()
    }

    /// Four nodes find each other in SRV records (all on 127.0.0.1, so the SRV ports tell them
    /// apart). Then d4 leaves and its record goes, as a pod's does while it restarts; it comes
    /// back on the same port, without discovery or `join` of its own, and stays alone past a
    /// full_mesh tick: the overlay does not bring back a node that left. Once its record is
    /// back, the others' re-polling finds it and joins it, and the mesh heals.
    func testNodesFormAClusterFromSRVRecordsAndHealAfterARestart() async throws {
        for index in 1...4 { _ = try await startNode("d\(index)", cluster: "dns") }
        let hosts = nodes.map { "127.0.0.1 \($0.id.name).trellis.test" }.joined(separator: "\n") + "\n"
        let records = nodes.map { "\(Self.service),\($0.id.name).trellis.test,\($0.id.port)" }
        let server = try DNSMasq(hosts: hosts, srv: records)
        dnsmasq = server
        let spec = try DiscoverySpec(parsing: "dns-srv:\(Self.service)", dnsServer: server.server)
        for node in nodes { _ = try await node.startDiscovery(spec, settings: Self.polling, group: group) }
        try await waitForMesh(nodes, within: 5, "formation")

        let leaver = nodes.removeLast()
        await leaver.leave()
        try server.restart(srv: Array(records.dropLast()))
        try await waitForMesh(nodes, within: 3, "after d4 left")
        let back = try await startNode("d4", port: leaver.id.port, cluster: "dns")
        XCTAssertEqual(back.id, leaver.id)
        try await Task.sleep(for: .milliseconds(1_300))
        let alone = await back.members
        XCTAssertEqual(alone, [back.id], "nothing but discovery may bring d4 back")

        try server.restart(srv: records)
        try await waitForMesh(nodes, within: 5, "after d4's record came back")
    }

    /// Nodes on 127.0.0.1 beacon on the loopback interface (the default for such nodes), with
    /// the default beacon interval of 1 s: each hears the others' first beacons.
    func testNodesFormAClusterFromGossipBeacons() async throws {
        let multicast = "239.255.\(Int.random(in: 1...254)).\(Int.random(in: 1...254))"
        let spec = try DiscoverySpec(parsing: "gossip:\(multicast):\(Int.random(in: 20_000...60_000))")
        for index in 1...3 {
            let node = try await startNode("g\(index)", cluster: "gossip")
            _ = try await node.startDiscovery(spec, settings: Self.polling, group: group)
        }
        try await waitForMesh(nodes, within: 5, "formation")
    }
}
