import NIOCore
import NIOPosix
import NIOSSL
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Mutual TLS between transports, on real TCP over 127.0.0.1, with the certificates in
/// `Certificates/` (made by its `generate.sh`: a cluster CA signing node-a, node-b and an
/// expired node; another CA signing rogue).
final class TLSTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    /// A string no handshake or frame contains by chance, to look for on the wire.
    private static let marker = "trellis-wire-marker-5d0c"
    private static let certificates = String(#filePath[..<#filePath.lastIndex(of: "/")!]) + "/Certificates/"

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    /// Settings with `node`'s certificate and key, trusting `ca`.
    private static func settings(_ node: String, ca: String = "ca") throws -> TLSSettings {
        try TLSSettings(
            certificatePath: certificates + node + ".pem", privateKeyPath: certificates + node + ".key",
            caPath: certificates + ca + ".pem")
    }

    /// A test node using `tls`'s certificate (trusting `ca`), or plain TCP for `nil`.
    private func start(
        _ name: String, tls: String?, ca: String = "ca", tags: [String: String] = [:], log: CapturedLog? = nil,
        configure: (inout TransportConfig) -> Void = { _ in }
    ) async throws -> TestNode {
        let settings = try tls.map { try Self.settings($0, ca: ca) }
        return try await TestNode.start(name, tags: tags, group: group) { config in
            config.tls = settings
            if let log { config.logger = log.logger(name) }
            configure(&config)
        }
    }

    func testNodesWithCertificatesFromTheClusterCAExchangeMessagesAndRequests() async throws {
        let a = try await start("a", tls: "node-a")
        let b = try await start("b", tls: "node-b")
        a.transport.connect(to: b.id)
        b.transport.connect(to: a.id)
        await waitUntil("a sees b up") { a.seenEvents.contains { $0.isConnectionUp } }
        await waitUntil("b sees a up") { b.seenEvents.contains { $0.isConnectionUp } }

        a.transport.sendMembership(["gossip", 1], to: b.id)
        try await a.transport.send(["hello", "over tls"], to: b.id)
        let reply = try await b.transport.request(["ping", 7], to: a.id, timeout: .seconds(5))
        XCTAssertEqual(reply, ["ping", 7])
        await waitUntil("b gets the message") {
            b.received.contains { $0.from == a.id && $0.payload == .value(["hello", "over tls"]) }
        }
        await waitUntil("b gets the membership message") {
            b.seenEvents.contains { if case .membershipMessage(["gossip", 1], a.id) = $0 { true } else { false } }
        }
        XCTAssertTrue(a.seenEvents.allSatisfy { $0.rejectedReason == nil && $0.connectFailedReason == nil })
        await a.shutdown()
        await b.shutdown()
    }

    func testNodeWithCertificateFromAnotherCAIsRefusedBothWays() async throws {
        let b = try await start("b", tls: "node-b")
        let rogue = try await start("rogue", tls: "rogue", ca: "other-ca")
        rogue.transport.connect(to: b.id)
        b.transport.connect(to: rogue.id)
        await waitUntil("rogue's dial fails") { rogue.seenEvents.contains { $0.connectFailedReason != nil } }
        await waitUntil("b's dial fails") { b.seenEvents.contains { $0.connectFailedReason != nil } }
        await waitUntil("b rejects rogue's connection") { b.seenEvents.contains { $0.rejectedReason != nil } }
        XCTAssertTrue(b.seenEvents.compactMap(\.connectFailedReason).contains { $0.contains("refused the peer's certificate") })
        XCTAssertTrue(b.seenEvents.compactMap(\.rejectedReason).allSatisfy { $0.hasPrefix("TLS: ") })
        do {
            _ = try await rogue.transport.request("anything", to: b.id, timeout: .seconds(2))
            XCTFail("a request from a node of another CA was answered")
        } catch {
            guard case .peerUnreachable = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertEqual(b.receivedCount, 0)
        XCTAssertEqual(rogue.receivedCount, 0)
        XCTAssertFalse((b.seenEvents + rogue.seenEvents).contains { $0.isConnectionUp })
        await rogue.shutdown()
        await b.shutdown()
    }

    func testForeignOrMissingClientCertificateIsRejectedAndLogged() async throws {
        let log = CapturedLog()
        let b = try await start("b", tls: "node-b", log: log)
        let rogue = try Self.settings("rogue", ca: "other-ca")
        // Trusts b's CA, so that b, not the client, is the side that refuses.
        var foreign = TLSConfiguration.makeClientConfiguration()
        foreign.certificateVerification = .noHostnameVerification
        foreign.trustRoots = .file(Self.certificates + "ca.pem")
        let anonymous = foreign
        foreign.certificateChain = try NIOSSLCertificate.fromPEMFile(rogue.certificatePath).map { .certificate($0) }
        foreign.privateKey = .privateKey(try NIOSSLPrivateKey(file: rogue.privateKeyPath, format: .pem))

        for (client, reason) in [(foreign, "refused the peer's certificate"), (anonymous, "presented no certificate")] {
            let peer = try await RawPeer.connect(port: b.id.port, tls: try NIOSSLContext(configuration: client), group: group)
            let closed = await peer.channel.closes(within: .seconds(5))
            XCTAssertTrue(closed, "b keeps a connection whose certificate it should refuse (\(reason))")
            await waitUntil("b reports: \(reason)") { b.seenEvents.contains { $0.rejectedReason?.contains(reason) ?? false } }
        }
        // The first close of an unauthenticated connection is logged at warning level (later
        // ones within a second are rate-limited to debug).
        XCTAssertFalse(log.lines(containing: "refused the peer's certificate").isEmpty)
        XCTAssertEqual(b.receivedCount, 0)
        await b.shutdown()
    }

    func testPlainNodeAndTLSNodeCannotTalk() async throws {
        let secure = try await start("secure", tls: "node-a") { $0.handshakeTimeout = .milliseconds(300) }
        let plain = try await start("plain", tls: nil) { $0.handshakeTimeout = .milliseconds(300) }
        secure.transport.connect(to: plain.id)
        plain.transport.connect(to: secure.id)
        await waitUntil("secure's dial fails") {
            secure.seenEvents.contains { $0.connectFailedReason?.contains("does not speak TLS") ?? false }
        }
        await waitUntil("plain's dial fails") { plain.seenEvents.contains { $0.connectFailedReason != nil } }
        do {
            _ = try await plain.transport.request("anything", to: secure.id, timeout: .seconds(2))
            XCTFail("a plain TCP node's request was answered by a TLS node")
        } catch {
            guard case .peerUnreachable = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertFalse((secure.seenEvents + plain.seenEvents).contains { $0.isConnectionUp })
        XCTAssertEqual(secure.receivedCount + plain.receivedCount, 0)
        await secure.shutdown()
        await plain.shutdown()
    }

    func testTrafficIsEncryptedOnTheWire() async throws {
        // Without TLS the same check must find the marker both ways, or it proves nothing.
        let plain = try await wireTrace(tls: false)
        XCTAssertTrue(plain.sentToTarget(contains: Self.marker))
        XCTAssertTrue(plain.sentByTarget(contains: Self.marker))

        let encrypted = try await wireTrace(tls: true)
        XCTAssertFalse(encrypted.sentToTarget(contains: Self.marker), "plaintext towards the TLS node")
        XCTAssertFalse(encrypted.sentByTarget(contains: Self.marker), "plaintext from the TLS node")
        XCTAssertGreaterThan(encrypted.byteCount, 1000)
    }

    /// Sends the marker to node b and back through a recording proxy: in the handshake metadata
    /// of a real transport dialing b, then in a request b answers. Returns the proxy's record.
    private func wireTrace(tls: Bool) async throws -> RecordingProxy {
        let b = try await start("b", tls: tls ? "node-b" : nil, tags: ["motto": Self.marker])
        let proxy = try await RecordingProxy.start(forwardingTo: b.id.port, group: group)
        // a's hello carries a's tags, b's welcome b's; then a refuses the welcome, since b's
        // id names b's own port, not the proxy's: this covers transport-to-transport handshakes.
        let a = try await start("a", tls: tls ? "node-a" : nil, tags: ["motto": Self.marker])
        a.transport.connect(to: PeerID(name: "b", host: "127.0.0.1", port: proxy.port))
        await waitUntil("a reaches b through the proxy") {
            a.seenEvents.contains { $0.connectFailedReason?.contains("b@127.0.0.1:\(b.id.port)") ?? false }
        }
        // Application traffic: a request b reads and a reply b writes, through its TLS handler.
        let peer = try await RawPeer.connect(port: proxy.port, tls: tls ? try Self.settings("node-a").context : nil, group: group)
        try await peer.authenticate(with: b)
        let answer = try await peer.request(["echo", .string(Self.marker)])
        guard case .reply(id: 1, let value) = answer else { throw RawPeerError.unexpectedFrame }
        XCTAssertEqual(value, ["echo", .string(Self.marker)])
        await peer.close()
        await a.shutdown()
        await proxy.stop()
        await b.shutdown()
        return proxy
    }

    func testSilentPeerIsClosedByHandshakeTimeoutAndLimitsStillHold() async throws {
        let b = try await start("b", tls: "node-b") { config in
            config.handshakeTimeout = .milliseconds(1500)
            config.limits = ConnectionLimits(maxPendingHandshakes: 1)
        }
        // Connects and hangs up at once, as a TCP health check does: not a rejected handshake.
        let checker = try await rawConnection(to: b.id, group: group)
        try await checker.close()
        try await Task.sleep(for: .milliseconds(50))
        // Opens TCP and never starts TLS.
        let silent = try await rawConnection(to: b.id, group: group)
        try await Task.sleep(for: .milliseconds(50))
        let excess = try await rawConnection(to: b.id, group: group)
        let excessClosed = await excess.closes(within: .seconds(1))
        XCTAssertTrue(excessClosed, "a connection over maxPendingHandshakes stayed open")
        XCTAssertTrue(silent.isActive, "the silent connection closed before its handshake timeout")
        let silentClosed = await silent.closes(within: .seconds(5))
        XCTAssertTrue(silentClosed, "a peer that never starts TLS outlived handshakeTimeout")
        XCTAssertEqual(b.seenEvents.compactMap(\.rejectedReason), [])
        await b.shutdown()
    }

    func testBadFilesAreReportedWhenTheSettingsAreMade() {
        let dir = Self.certificates
        func failure(_ certificate: String, _ key: String, _ ca: String) -> TLSSettingsError? {
            do {
                _ = try TLSSettings(certificatePath: dir + certificate, privateKeyPath: dir + key, caPath: dir + ca)
                return nil
            } catch {
                return error
            }
        }
        XCTAssertEqual(
            failure("missing.pem", "node-a.key", "ca.pem"),
            .unreadable(.certificate, path: dir + "missing.pem", reason: "No such file or directory"))
        XCTAssertEqual(failure("node-a.pem", "node-a.key", ""), .unreadable(.ca, path: dir, reason: "Is a directory"))
        XCTAssertEqual(failure("node-a.key", "node-a.key", "ca.pem"), .noCertificate(.certificate, path: dir + "node-a.key"))
        XCTAssertEqual(failure("node-a.pem", "node-a.pem", "ca.pem"), .noPrivateKey(path: dir + "node-a.pem"))
        XCTAssertEqual(
            failure("node-a.pem", "node-b.key", "ca.pem"),
            .keyDoesNotMatchCertificate(keyPath: dir + "node-b.key", certificatePath: dir + "node-a.pem"))
        XCTAssertEqual(failure("expired.pem", "expired.key", "ca.pem"), .certificateNotValidNow(path: dir + "expired.pem", expired: true))
        let wrongCA = failure("node-a.pem", "node-a.key", "other-ca.pem")
        guard case .certificateNotSignedByCA(dir + "node-a.pem", dir + "other-ca.pem", let detail)? = wrongCA else {
            return XCTFail("unexpected \(String(describing: wrongCA))")
        }
        XCTAssertTrue(detail.contains("CERTIFICATE_VERIFY_FAILED"), detail)
        XCTAssertTrue(wrongCA?.description.contains("openssl verify -CAfile") ?? false)
        XCTAssertNil(failure("node-a.pem", "node-a.key", "ca.pem"))
    }
}
