import NIOCore
import NIOPosix
import TrellisDiscovery
import TrellisTestSupport
import TrellisWire
import XCTest

/// DNS discovery against a real dnsmasq on 127.0.0.1, and against servers that misbehave.
final class DNSDiscoveryTests: XCTestCase {
    var dnsmasq: DNSMasq?

    override func tearDown() {
        dnsmasq?.stop()
        dnsmasq = nil
    }

    func start(hosts: String, srv: [String] = []) throws -> DNSMasq {
        let server = try DNSMasq(hosts: hosts, srv: srv)
        dnsmasq = server
        return server
    }

    func resolver(_ server: String, timeout: Duration = .seconds(1)) throws -> DNSResolver {
        try DNSResolver(server: server, timeout: timeout, attempts: 2, group: MultiThreadedEventLoopGroup.singleton)
    }

    func peers(_ texts: String...) throws -> Set<PeerID> {
        Set(try texts.map { try PeerID(parsing: $0) })
    }

    func testAddressRecordsBecomePeersAndAChangeIsSeenOnTheNextPoll() async throws {
        let server = try start(hosts: "127.0.0.2 peers.trellis.test\n127.0.0.3 peers.trellis.test\n")
        let dns = try DNSDiscovery(
            .addresses(name: "peers.trellis.test", nodeName: "trellis", port: 7100), resolver: try resolver(server.server))
        let before = try await dns.discover()
        XCTAssertEqual(before, try peers("trellis@127.0.0.2:7100", "trellis@127.0.0.3:7100"))
        try server.setHosts("127.0.0.3 peers.trellis.test\n127.0.0.4 peers.trellis.test\n")
        let after = try await dns.discover()
        XCTAssertEqual(after, try peers("trellis@127.0.0.3:7100", "trellis@127.0.0.4:7100"))
    }

    func testAAAARecordsBecomePeersWithRFC5952Hosts() async throws {
        let server = try start(hosts: "fd00:0:0:0::7 peers.trellis.test\n127.0.0.2 peers.trellis.test\n")
        let v6 = try DNSDiscovery(
            .addresses(name: "peers.trellis.test", nodeName: "n", port: 7100), family: .ipv6, resolver: try resolver(server.server))
        let found = try await v6.discover()
        XCTAssertEqual(found, [PeerID(name: "n", host: "fd00::7", port: 7100)])
        let both = try DNSDiscovery(
            .addresses(name: "peers.trellis.test", nodeName: "n", port: 7100), family: .any, resolver: try resolver(server.server))
        let all = try await both.discover()
        XCTAssertEqual(all.map(\.host).sorted(), ["127.0.0.2", "fd00::7"])
    }

    func testServiceRecordsBecomePeersNamedByTheirTargetAndAChangeIsSeen() async throws {
        let service = "_trellis._tcp.trellis.test"
        let server = try start(
            hosts: "127.0.0.1 n1.trellis.test\n127.0.0.1 n2.trellis.test\n127.0.0.9 n3.trellis.test\n",
            srv: ["\(service),n1.trellis.test,7101", "\(service),n2.trellis.test,7102", "\(service),gone.trellis.test,7109"])
        let resolver = try resolver(server.server)
        let dns = try DNSDiscovery(.service(name: service), resolver: resolver)
        // gone.trellis.test has no address: it is left out.
        let found = try await dns.discover()
        XCTAssertEqual(found, try peers("n1@127.0.0.1:7101", "n2@127.0.0.1:7102"))

        let named = try DNSDiscovery(.service(name: service, nodeName: .fixed("trellis"), host: .targetName), resolver: resolver)
        let byName = try await named.discover()
        XCTAssertEqual(byName, try peers(
            "trellis@n1.trellis.test:7101", "trellis@n2.trellis.test:7102", "trellis@gone.trellis.test:7109"))

        try server.restart(srv: ["\(service),n2.trellis.test,7102", "\(service),n3.trellis.test,7103"])
        let after = try await dns.discover()
        XCTAssertEqual(after, try peers("n2@127.0.0.1:7102", "n3@127.0.0.9:7103"))
    }

    func testANameThatDoesNotExistFindsNoPeers() async throws {
        let server = try start(hosts: "127.0.0.2 peers.trellis.test\n")
        let dns = try DNSDiscovery(.service(name: "_none._tcp.trellis.test"), resolver: try resolver(server.server))
        let found = try await dns.discover()
        XCTAssertEqual(found, [])
    }

    /// 60 SRV records with their addresses do not fit the 1232 bytes offered over UDP: the
    /// server truncates, and the resolver asks again over TCP.
    func testALargeReplyComesOverTCP() async throws {
        let hosts = (1...60).map { "127.0.1.\($0) node-\($0).trellis.test" }.joined(separator: "\n") + "\n"
        let srv = (1...60).map { "_big._tcp.trellis.test,node-\($0).trellis.test,\(7000 + $0)" }
        let server = try start(hosts: hosts, srv: srv)
        let dns = try DNSDiscovery(.service(name: "_big._tcp.trellis.test"), resolver: try resolver(server.server))
        let found = try await dns.discover()
        XCTAssertEqual(found.count, 60)
        XCTAssertTrue(found.contains(PeerID(name: "node-42", host: "127.0.1.42", port: 7042)))
    }

    func testASilentServerTimesOutWithATypedError() async throws {
        let silent = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let address = "127.0.0.1:\(silent.localAddress!.port!)"
        let dns = try DNSDiscovery(
            .addresses(name: "peers.trellis.test", nodeName: "n", port: 7100), resolver: try resolver(address, timeout: .milliseconds(150)))
        let start = ContinuousClock.now
        do {
            _ = try await dns.discover()
            XCTFail("a silent server answered")
        } catch {
            XCTAssertEqual(error, .dns(.timeout(server: address, wait: .milliseconds(150), attempts: 2)))
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(1))
    }

    func testAGarbageReplyIsAMalformedError() async throws {
        let garbage = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(GarbageReplier()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { garbage.close(promise: nil) }
        let dns = try DNSDiscovery(
            .service(name: "_trellis._tcp.trellis.test"), resolver: try resolver("127.0.0.1:\(garbage.localAddress!.port!)"))
        do {
            _ = try await dns.discover()
            XCTFail("garbage parsed")
        } catch {
            guard case .dns(.malformed) = error else { return XCTFail("\(error)") }
        }
    }

    func testInvalidConfigurationIsRefusedUpFront() throws {
        let resolver = try resolver("127.0.0.1:53")
        XCTAssertThrowsError(try DNSDiscovery(.addresses(name: "bad name.test", nodeName: "n", port: 7100), resolver: resolver))
        XCTAssertThrowsError(try DNSDiscovery(.addresses(name: "ok.test", nodeName: "n@x", port: 7100), resolver: resolver))
        XCTAssertThrowsError(try DNSDiscovery(.addresses(name: "ok.test", nodeName: "n", port: 0), resolver: resolver))
        XCTAssertThrowsError(try DNSResolver(server: "dns.example:53", group: MultiThreadedEventLoopGroup.singleton)) { error in
            guard case .invalidServer = error as? DNSError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try DNSResolver(server: "[::1]:5353", group: MultiThreadedEventLoopGroup.singleton).server.port, 5353)
    }

    func testTheSystemServerIsTheFirstNameserverOfResolvConf() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("resolv-\(UUID().uuidString).conf")
        defer { try? FileManager.default.removeItem(at: file) }
        try "search default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try DNSResolver.systemServer(resolvConf: file.path), "10.96.0.10:53")
        try "options ndots:5\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DNSResolver.systemServer(resolvConf: file.path))
    }
}

/// Answers every query with its own id, a reply header announcing five answers, and no records.
private final class GarbageReplier: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = unwrapInboundIn(data)
        let id = Array(query.data.readableBytesView.prefix(2))
        let reply = ByteBuffer(bytes: id + [0x81, 0x80, 0, 0, 0, 5, 0, 0, 0, 0, 0xC0])
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: query.remoteAddress, data: reply)), promise: nil)
    }
}
