import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

final class HandshakeTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testHandshakeBringsConnectionsUpBothWays() async throws {
        let a = try await TestNode.start("a", tags: ["zone": "1"], group: group)
        let b = try await TestNode.start("b", tags: ["zone": "2"], group: group)
        a.transport.connect(to: b.id)
        b.transport.connect(to: a.id)
        await waitUntil("a sees b up") { a.seenEvents.contains { $0.isConnectionUp } }
        await waitUntil("b sees a up") { b.seenEvents.contains { $0.isConnectionUp } }
        guard case .connectionUp(let peer, let metadata)? = a.seenEvents.first(where: \.isConnectionUp) else {
            return XCTFail("no connectionUp")
        }
        XCTAssertEqual(peer, b.id)
        XCTAssertEqual(metadata, PeerMetadata(tags: ["zone": "2"], capabilities: ["test"]))

        a.transport.sendMembership(["gossip", 1], to: b.id)
        await waitUntil("membership message") {
            b.seenEvents.contains { if case .membershipMessage(["gossip", 1], a.id) = $0 { true } else { false } }
        }
        await a.shutdown()
        await b.shutdown()
    }

    func testWrongCookieIsRefused() async throws {
        let a = try await TestNode.start("a", cookie: "right", group: group)
        let b = try await TestNode.start("b", cookie: "wrong", group: group)
        a.transport.connect(to: b.id)
        await waitUntil("connectFailed") { a.seenEvents.contains { $0.connectFailedReason != nil } }
        await waitUntil("handshakeRejected") { b.seenEvents.contains { $0.rejectedReason != nil } }
        XCTAssertTrue(a.seenEvents.compactMap(\.connectFailedReason).first?.contains("cookie") ?? false)
        XCTAssertTrue(b.seenEvents.compactMap(\.rejectedReason).first?.contains("cookie") ?? false)
        XCTAssertFalse(a.seenEvents.contains { $0.isConnectionUp })
        do {
            _ = try await a.transport.request(1, to: b.id, timeout: .seconds(2))
            XCTFail("request over an unauthenticated connection succeeded")
        } catch {
            guard case .peerUnreachable = error else { return XCTFail("unexpected \(error)") }
        }
        await a.shutdown()
        await b.shutdown()
    }

    func testWrongClusterIsRefused() async throws {
        let a = try await TestNode.start("a", cluster: "one", group: group)
        let b = try await TestNode.start("b", cluster: "two", group: group)
        a.transport.connect(to: b.id)
        await waitUntil("connectFailed") { a.seenEvents.contains { $0.connectFailedReason != nil } }
        await waitUntil("handshakeRejected") { b.seenEvents.contains { $0.rejectedReason != nil } }
        XCTAssertTrue(a.seenEvents.compactMap(\.connectFailedReason).first?.contains("cluster") ?? false)
        XCTAssertTrue(b.seenEvents.compactMap(\.rejectedReason).first?.contains("cluster") ?? false)
        await a.shutdown()
        await b.shutdown()
    }

    func testSilentClientIsClosedByHandshakeTimeout() async throws {
        let b = try await TestNode.start("b", group: group) { $0.handshakeTimeout = .milliseconds(200) }
        let raw = try await rawConnection(to: b.id, group: group)
        let closed = await raw.closes(within: .seconds(5))
        XCTAssertTrue(closed)
        await b.shutdown()
    }
}
