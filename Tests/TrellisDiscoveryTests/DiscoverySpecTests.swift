import Logging
import NIOPosix
import TrellisDiscovery
import TrellisWire
import XCTest

/// The `--discovery` forms, and the strategies they make for a node.
final class DiscoverySpecTests: XCTestCase {
    let me = PeerID(name: "trellis", host: "127.0.0.1", port: 7100)

    func strategy(_ spec: DiscoverySpec) async throws -> any DiscoveryStrategy {
        try await spec.strategy(
            selfID: me, clusterName: "c", cookie: "k", group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
    }

    func testTheTextFormsParse() throws {
        XCTAssertEqual(
            try DiscoverySpec(parsing: "static:n1@10.0.0.1:7100,n2@10.0.0.2:7100"),
            .static([PeerID(name: "n1", host: "10.0.0.1", port: 7100), PeerID(name: "n2", host: "10.0.0.2", port: 7100)]))
        XCTAssertEqual(
            try DiscoverySpec(parsing: "dns-srv:_trellis._tcp.t.default.svc.cluster.local", dnsServer: "10.96.0.10"),
            .dnsService(name: "_trellis._tcp.t.default.svc.cluster.local", server: "10.96.0.10"))
        XCTAssertEqual(
            try DiscoverySpec(parsing: "dns-a:t.default.svc.cluster.local"), .dnsAddresses(name: "t.default.svc.cluster.local", server: nil))
        XCTAssertEqual(try DiscoverySpec(parsing: "gossip"), .gossip(group: "239.255.73.1", port: 45_892))
        XCTAssertEqual(try DiscoverySpec(parsing: "gossip:239.1.2.3:4000"), .gossip(group: "239.1.2.3", port: 4000))
    }

    func testBadTextSaysWhatItExpects() {
        for text in ["", "dns", "dns-srv:", "dns-a:bad..name", "static:", "static:n1", "gossip:239.1.2.3", "gossip:10.0.0.1:4000", "gossip:239.1.2:4000", "gossip:239.1.2.3:0", "gossip:239.1.2.3:70000", "mdns:x"] {
            XCTAssertThrowsError(try DiscoverySpec(parsing: text), text) { error in
                guard case .invalidSetting("--discovery", let why) = error as? DiscoveryError else { return XCTFail("\(error)") }
                let known = ["dns-srv:NAME", "invalid peer id", "invalid DNS name", "gossip:GROUP:PORT", "not an IPv4 multicast group", "not between 1 and 65535"]
                XCTAssertTrue(known.contains { why.contains($0) }, why)
            }
        }
    }

    func testDNSAddressPeersTakeTheNodesOwnNameAndPort() async throws {
        let dns = try await strategy(.dnsAddresses(name: "t.test", server: "127.0.0.1:5353"))
        let records = try XCTUnwrap(dns as? DNSDiscovery).records
        XCTAssertEqual(records, .addresses(name: "t.test", nodeName: "trellis", port: 7100))
    }

    func testGossipOfANodeOnLoopbackStaysOnLoopback() async throws {
        let spec = DiscoverySpec.gossip(group: "239.255.\(Int.random(in: 1...254)).1", port: Int.random(in: 20_000...60_000))
        let made = try await strategy(spec)
        let gossip = try XCTUnwrap(made as? GossipDiscovery)
        XCTAssertEqual(gossip.settings.interface, "127.0.0.1")
        await gossip.shutdown()
    }

    func testABadDNSServerIsATypedError() async {
        do {
            _ = try await strategy(.dnsService(name: "_t._tcp.test", server: "resolver.local"))
            XCTFail("accepted")
        } catch {
            guard case .dns(.invalidServer) = error as? DiscoveryError else { return XCTFail("\(error)") }
        }
    }
}
