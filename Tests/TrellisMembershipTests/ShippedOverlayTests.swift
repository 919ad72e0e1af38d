import Foundation
import TrellisLua
import TrellisSimulator
import TrellisWire
import XCTest

@testable import TrellisMembership

/// The shipped overlay scripts, run by the real membership core on the in-memory network
/// with a virtual clock.
final class ShippedOverlayTests: XCTestCase {
    static let overlays = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("plugins/overlays")

    let settings = MembershipSettings(heartbeatInterval: 200, failureTimeout: 1_000, defaultTickInterval: 1_000)

    func ids(_ count: Int) -> [PeerID] { (1...count).map { PeerID(name: "n\($0)", host: "127.0.0.1", port: 7100 + $0) } }

    func cluster(_ script: String, _ nodes: [PeerID], config: (PeerID) -> Value = { _ in .nil }) throws -> SimulatedCluster {
        let path = Self.overlays.appendingPathComponent(script).path
        let cluster = SimulatedCluster(latency: 2)
        for (index, id) in nodes.enumerated() {
            let overlay = try OverlayScript(contentsOf: path, seed: UInt64(index + 1))
            cluster.addNode(id, strategy: overlay, config: config(id), settings: settings)
        }
        return cluster
    }

    func assertEveryLiveNode(of cluster: SimulatedCluster, sees expected: [PeerID], file: StaticString = #filePath, line: UInt = #line) {
        for node in cluster.liveNodes {
            XCTAssertEqual(cluster.members(of: node), expected.sorted(), "members of \(node)", file: file, line: line)
        }
    }

    func testFullMeshConvergesThroughOneSeed() throws {
        let nodes = ids(5)
        let cluster = try cluster("full_mesh.lua", nodes)
        for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
        cluster.run(for: 100)
        assertEveryLiveNode(of: cluster, sees: nodes)
        XCTAssertTrue(cluster.scriptFailures.isEmpty, "\(cluster.scriptFailures)")
    }

    func testFullMeshConvergesAlongAChain() throws {
        let nodes = ids(8)
        let cluster = try cluster("full_mesh.lua", nodes)
        for (joiner, target) in zip(nodes.dropFirst(), nodes) { cluster.join(joiner, through: target) }
        cluster.run(for: 3_000)
        assertEveryLiveNode(of: cluster, sees: nodes)
    }

    func testALeavingNodeDisappearsFromEveryViewAndStaysOut() throws {
        let nodes = ids(5)
        let cluster = try cluster("full_mesh.lua", nodes)
        for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
        cluster.run(for: 100)
        cluster.leave(nodes[4])
        cluster.run(for: 5_000)
        for node in nodes.prefix(4) { XCTAssertEqual(cluster.members(of: node), Array(nodes.prefix(4)), "\(node)") }
        XCTAssertEqual(cluster.members(of: nodes[4]), [nodes[4]])
    }

    /// A leaving node also says goodbye to the peers it lost touch with: its failure detector
    /// may have given up on a peer that still counts it a member (lost heartbeats one way).
    func testFullMeshSaysGoodbyeToPeersItLostTouchWith() throws {
        let script = try OverlayScript(contentsOf: Self.overlays.appendingPathComponent("full_mesh.lua").path, seed: 1)
        _ = try script.start(OverlayContext(selfID: "n4", config: .nil, now: 0))
        for peer in ["n1", "n2"] { _ = try script.receive(.map(["type": "hello", "members": []]), from: peer, now: 0) }
        _ = try script.connectionDown("n1", reason: "silent", now: 10)
        let goodbyes = try script.leave("n4", now: 20).messages
        XCTAssertEqual(goodbyes.map(\.to).sorted(), ["n1", "n2"])
        XCTAssertTrue(goodbyes.allSatisfy { $0.message.value == .map(["type": "leave"]) })
    }

    func testAKilledNodeIsDroppedAndGossipDoesNotBringItBack() throws {
        let nodes = ids(5)
        let cluster = try cluster("full_mesh.lua", nodes)
        for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
        cluster.run(for: 100)
        cluster.kill(nodes[2])
        cluster.run(for: 10)
        for node in cluster.liveNodes { XCTAssertFalse(cluster.members(of: node).contains(nodes[2]), "\(node)") }
        cluster.run(for: 10_000)
        assertEveryLiveNode(of: cluster, sees: nodes.filter { $0 != nodes[2] })
    }

    func testAFrozenNodeIsSuspectedAndRejoinsWhenThawed() throws {
        let nodes = ids(4)
        let cluster = try cluster("full_mesh.lua", nodes)
        for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
        cluster.run(for: 100)
        cluster.setFrozen(nodes[3], true)
        cluster.run(for: settings.failureTimeout + 2 * settings.heartbeatInterval)
        for node in nodes.prefix(3) { XCTAssertFalse(cluster.members(of: node).contains(nodes[3]), "\(node)") }
        cluster.setFrozen(nodes[3], false)
        cluster.run(for: 5_000)
        assertEveryLiveNode(of: cluster, sees: nodes)
    }

    func testRunsRepeat() throws {
        func trace() throws -> [[PeerID]] {
            let nodes = ids(6)
            let cluster = try cluster("full_mesh.lua", nodes)
            for node in nodes.dropFirst() { cluster.join(node, through: nodes[0]) }
            var snapshots: [[PeerID]] = []
            for step in 0..<30 {
                if step == 10 { cluster.kill(nodes[1]) }
                cluster.run(for: 37)
                snapshots += nodes.map { cluster.members(of: $0) }
            }
            return snapshots + [[PeerID(name: "m", host: "h", port: cluster.messagesDelivered)]]
        }
        XCTAssertEqual(try trace(), try trace())
    }

    func testStaticMembersComeFromConfig() throws {
        let nodes = ids(4)
        let config = Value.map(["members": .array(nodes.map { .string($0.description) })])
        let cluster = try cluster("static.lua", nodes) { _ in config }
        cluster.run(for: 100)
        assertEveryLiveNode(of: cluster, sees: nodes)
        cluster.kill(nodes[0])
        cluster.run(for: 5_000)
        XCTAssertEqual(cluster.members(of: nodes[1]), nodes, "a static member stays a member while down")
    }

    func testClientServerServersSeeEveryoneAndClientsSeeServers() throws {
        let path = Self.overlays.appendingPathComponent("client_server.lua").path
        let servers = (1...2).map { PeerID(name: "s\($0)", host: "127.0.0.1", port: 7200 + $0) }
        let clients = (1...8).map { PeerID(name: "c\($0)", host: "127.0.0.1", port: 7300 + $0) }
        let cluster = SimulatedCluster(latency: 2)
        for (index, id) in (servers + clients).enumerated() {
            let role = servers.contains(id) ? "server" : "client"
            cluster.addNode(id, strategy: try OverlayScript(contentsOf: path, seed: UInt64(index + 1)), config: .nil,
                            tags: ["role": role], settings: settings)
        }
        cluster.join(servers[1], through: servers[0])
        for client in clients { cluster.join(client, through: servers[0]) }
        cluster.run(for: 3_000)
        XCTAssertTrue(cluster.scriptFailures.isEmpty, "\(cluster.scriptFailures)")
        for server in servers { XCTAssertEqual(cluster.members(of: server), (servers + clients).sorted(), "\(server)") }
        for client in clients { XCTAssertEqual(cluster.members(of: client), (servers + [client]).sorted(), "\(client)") }

        cluster.kill(clients[0])
        cluster.kill(servers[1])
        cluster.run(for: 5_000)
        XCTAssertEqual(cluster.members(of: servers[0]), ([servers[0]] + clients.dropFirst()).sorted())
        for client in clients.dropFirst() { XCTAssertEqual(cluster.members(of: client), [servers[0], client].sorted(), "\(client)") }
    }
}
