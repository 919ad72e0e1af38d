import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

/// Bad bytes from one client close that client's connection only.
final class HostileInputTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testGarbageClosesOnlyThatConnection() async throws {
        try await assertOnlyAttackerDisconnected(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
    }

    func testUnknownFrameKindClosesOnlyThatConnection() async throws {
        try await assertOnlyAttackerDisconnected([0, 0, 0, 3, 0x7f, 1, 2])
    }

    func testMalformedHelloClosesOnlyThatConnection() async throws {
        try await assertOnlyAttackerDisconnected([0, 0, 0, 3, 0x02, 0xc1, 0xc1])
    }

    func testOversizedLengthPrefixClosesOnlyThatConnection() async throws {
        try await assertOnlyAttackerDisconnected([0xff, 0xff, 0xff, 0xff, 0x02])
    }

    func testTruncatedFrameClosesOnlyThatConnection() async throws {
        try await assertOnlyAttackerDisconnected([0, 0, 0, 100, 0x02, 0x80], thenHangUp: true)
    }

    /// Runs a legitimate exchange between two nodes while a raw client sends `attack` to one of
    /// them, and checks the attacker is disconnected while the exchange completes.
    private func assertOnlyAttackerDisconnected(_ attack: [UInt8], thenHangUp: Bool = false) async throws {
        let a = try await TestNode.start("a", group: group)
        // A long handshake timeout, so only the bad bytes can explain the attacker's disconnection.
        let b = try await TestNode.start("b", group: group) { $0.handshakeTimeout = .seconds(60) }
        a.transport.connect(to: b.id)
        await waitUntil("connection up") { a.seenEvents.contains { $0.isConnectionUp } }
        try await a.transport.send(0, to: b.id)

        let raw = try await rawConnection(to: b.id, group: group)
        try await raw.send(attack)
        if thenHangUp {
            try await raw.close()
        } else {
            let closed = await raw.closes(within: .seconds(5))
            XCTAssertTrue(closed, "the listener should close a connection sending bad bytes")
        }

        for i in 1..<100 { try await a.transport.send(.int(Int64(i)), to: b.id) }
        await waitUntil("messages after the attack") { b.receivedCount == 100 }
        let reply = try await a.transport.request("still there?", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, "still there?")
        XCTAssertFalse(a.seenEvents.contains { $0.isConnectionDown })
        await a.shutdown()
        await b.shutdown()
    }
}

/// Frames must fit `maxFrameSize` on the way out too.
final class FrameLimitTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testOversizedSendIsRefusedAndConnectionSurvives() async throws {
        let a = try await TestNode.start("a", group: group) { $0.maxFrameSize = 1024 }
        let b = try await TestNode.start("b", group: group) { $0.maxFrameSize = 1024 }
        do {
            try await a.transport.send(bytes: [UInt8](repeating: 7, count: 2000), to: b.id)
            XCTFail("expected messageTooLarge")
        } catch {
            guard case .messageTooLarge(_, 1024) = error else { return XCTFail("unexpected \(error)") }
        }
        try await a.transport.send(bytes: [1, 2, 3], to: b.id)
        await waitUntil("small message") { b.receivedCount == 1 }
        await a.shutdown()
        await b.shutdown()
    }

    func testBackpressureDeliversEverythingThroughASmallOutbox() async throws {
        let a = try await TestNode.start("a", group: group) { $0.outboxHighWatermark = 16 * 1024 }
        let b = try await TestNode.start("b", group: group)
        let payload = [UInt8](repeating: 0xab, count: 1024)
        for _ in 0..<2000 { try await a.transport.send(bytes: payload, to: b.id) }
        await waitUntil("all large messages", timeout: .seconds(30)) { b.receivedCount == 2000 }
        await a.shutdown()
        await b.shutdown()
    }
}
