import NIOCore
import NIOPosix
@testable import TrellisDiscovery
import TrellisWire
import XCTest

/// Gossip discovery over real multicast on the loopback interface: interface 127.0.0.1 and
/// hops 0, so no beacon leaves this host. Each test takes its own group and port.
final class GossipDiscoveryTests: XCTestCase {
    var running: [GossipDiscovery] = []
    let group = MultiThreadedEventLoopGroup.singleton
    lazy var settings = GossipSettings(
        group: "239.255.\(Int.random(in: 1...254)).\(Int.random(in: 1...254))", port: Int.random(in: 20_000...60_000),
        interface: "127.0.0.1", hops: 0, interval: .milliseconds(50), expiry: .milliseconds(400))

    override func tearDown() async throws {
        for gossip in running { await gossip.shutdown() }
        running = []
    }

    func start(_ name: String, cluster: String = "c", cookie: String = "secret") async throws -> GossipDiscovery {
        let gossip = try await GossipDiscovery.start(
            selfID: PeerID(name: name, host: "127.0.0.1", port: 7100), clusterName: cluster, cookie: cookie,
            settings: settings, group: group)
        running.append(gossip)
        return gossip
    }

    /// Polls `gossip` until it finds exactly `expected` (at most 3 s).
    func waitUntil(_ gossip: GossipDiscovery, finds expected: Set<String>) async throws {
        var found: Set<String> = []
        for _ in 0..<150 {
            found = Set(gossip.discover().map(\.name))
            if found == expected { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTFail("\(gossip.selfID.name) finds \(found.sorted()), not \(expected.sorted())")
    }

    func testNodesFindEachOtherAndForgetOneThatStops() async throws {
        let nodes = [try await start("g1"), try await start("g2"), try await start("g3")]
        for node in nodes {
            try await waitUntil(node, finds: Set(["g1", "g2", "g3"]).subtracting([node.selfID.name]))
        }
        await nodes[2].shutdown()
        try await waitUntil(nodes[0], finds: ["g2"])
        try await waitUntil(nodes[1], finds: ["g1"])
    }

    func testStrangersAndOtherClustersAreIgnored() async throws {
        let member = try await start("m1")
        _ = try await start("stranger", cookie: "wrong")
        _ = try await start("other", cluster: "other-cluster")
        _ = try await start("m2")
        try await waitUntil(member, finds: ["m2"])
        try await Task.sleep(for: .milliseconds(150))
        XCTAssertEqual(Set(member.discover().map(\.name)), ["m2"])
        XCTAssertGreaterThan(member.stats.badSignature, 0)
        XCTAssertGreaterThan(member.stats.otherCluster, 0)
    }

    func testForgedDatagramsOnTheWireAreCountedAndIgnored() async throws {
        let member = try await start("m1")
        let sender = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { sender.close(promise: nil) }
        let options = try XCTUnwrap(sender as? any SocketOptionProvider)
        try await options.setIPMulticastIF(in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)).get()
        try await options.setIPMulticastTTL(0).get()
        let target = try SocketAddress(ipAddress: settings.group, port: settings.port)
        func send(_ bytes: [UInt8]) async throws {
            try await sender.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes))).get()
        }
        let key = GossipBeacon.key(cookie: "secret", clusterName: "c")
        let ghost = PeerID(name: "ghost", host: "127.0.0.1", port: 7199)
        let fresh = GossipBeacon(clusterName: "c", peer: ghost, timestamp: wallClockMilliseconds()).encoded(key: key)
        try await send(Array("not a beacon".utf8))
        try await send(GossipBeacon(clusterName: "c", peer: ghost, timestamp: wallClockMilliseconds() - 60_000).encoded(key: key))
        try await send(fresh)
        try await send(fresh)
        var stats = GossipStats()
        for _ in 0..<100 {
            stats = member.stats
            if stats.malformed == 1 && stats.stale == 1 && stats.replayed == 1 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual([stats.malformed, stats.stale, stats.accepted, stats.replayed], [1, 1, 1, 1])
        XCTAssertEqual(member.discover(), [ghost], "the one fresh, signed beacon counts")
    }

    func testInvalidSettingsAreRefusedByName() async {
        let cases: [(GossipSettings, String)] = [
            (GossipSettings(group: "10.0.0.1"), "group"),
            (GossipSettings(group: "ff02::1"), "group"),
            (GossipSettings(interface: "lo"), "interface"),
            (GossipSettings(port: 0), "port"),
            (GossipSettings(interval: .seconds(2), expiry: .seconds(1)), "expiry"),
            (GossipSettings(window: .zero), "window"),
        ]
        for (settings, name) in cases {
            do {
                _ = try await GossipDiscovery.start(
                    selfID: PeerID(name: "x", host: "127.0.0.1", port: 1), clusterName: "c", cookie: "k", settings: settings, group: group)
                XCTFail("\(name) accepted")
            } catch {
                guard case .invalidSetting(let setting, _) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(setting, name)
            }
        }
    }
}
