import NIOCore
import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Authenticated peers that break the channel rules: a channel the node does not accept is
/// refused in the handshake; a frame kind no connection of that direction carries closes that
/// connection; a frame its channel does not carry is dropped. Nothing else is touched.
final class ChannelViolationTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testUnacceptedChannelIsRefusedInTheHandshake() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group) { $0.acceptedChannels = [.default] }
        let reply = try await a.transport.request("ok", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, "ok")

        let raw = try await RawPeer.connect(to: b, group: group)
        guard case .challenge(let challenge) = try await raw.nextFrame() else { return XCTFail("no challenge") }
        let transcript = Handshake.Transcript(
            cluster: "test", channel: "secret#2", connectorID: "mallory@127.0.0.1:1",
            connectorMetadata: Handshake.metadataValue(PeerMetadata()),
            acceptorNonce: try Handshake.readChallenge(challenge), connectorNonce: Handshake.nonce())
        try await raw.sendFrame { FrameCodec.writeValue(.hello, Handshake.hello(transcript, key: b.transport.key), into: &$0) }
        guard case .reject(let reason) = try await raw.nextFrame() else { return XCTFail("not rejected") }
        XCTAssertTrue(reason["reason"]?.stringValue?.contains("acceptedChannels") ?? false, "\(reason)")
        let closed = await raw.channel.closes(within: .seconds(2))
        XCTAssertTrue(closed)
        await waitUntil("handshakeRejected") { b.seenEvents.contains { $0.rejectedReason?.contains("'secret'") ?? false } }

        do {
            _ = try await a.transport.request("x", to: b.id, channel: "other", timeout: .seconds(5))
            XCTFail("a channel b does not accept carried a request")
        } catch {
            XCTAssertTrue("\(error)".contains("acceptedChannels"), "\(error)")
        }
        let later = try await a.transport.request("still ok", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(later, "still ok")
        await a.shutdown()
        await b.shutdown()
    }

    func testFrameKindsNoInboundConnectionCarriesCloseOnlyThatConnection() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        a.transport.connect(to: b.id)
        await waitUntil("connection up") { a.seenEvents.contains { $0.isConnectionUp } }
        let bystander = try await RawPeer.authenticated(to: b, channel: "default#1", group: group)

        let kinds: [(String, (inout ByteBuffer) -> Void)] = [
            ("reply", { FrameCodec.writeReply(id: 1, "forged", into: &$0) }),
            ("hello", { FrameCodec.writeValue(.hello, .map([:]), into: &$0) }),
            ("pong", { FrameCodec.writeEmpty(.pong, into: &$0) }),
            ("metadata", { FrameCodec.writeValue(.metadata, .map([:]), into: &$0) }),
        ]
        for (kind, body) in kinds {
            let raw = try await RawPeer.authenticated(to: b, group: group)
            try await raw.sendFrame(body)
            let closed = await raw.channel.closes(within: .seconds(2))
            XCTAssertTrue(closed, "a \(kind) frame on an inbound connection closes it")
        }

        try await bystander.sendFrame { FrameCodec.writeValue(.message, "bystander", into: &$0) }
        await waitUntil("the bystander's message") { b.received.contains { $0.payload == .value("bystander") } }
        XCTAssertTrue(bystander.channel.isActive)
        let reply = try await a.transport.request("fine", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, "fine")
        XCTAssertFalse(a.seenEvents.contains { $0.isConnectionDown })
        await bystander.close()
        await a.shutdown()
        await b.shutdown()
    }

    func testApplicationFramesOnMembershipAreDroppedNotDelivered() async throws {
        let b = try await TestNode.start("b", group: group)
        let raw = try await RawPeer.authenticated(to: b, channel: "membership", group: group)
        try await raw.sendFrame { FrameCodec.writeBytes([1, 2, 3], into: &$0) }
        try await raw.sendFrame { FrameCodec.writeRequest(id: 7, "sneaky", into: &$0) }
        guard case .replyError(7, let message) = try await raw.nextFrame() else { return XCTFail("no error reply") }
        XCTAssertTrue(message.contains("membership"), message)

        try await raw.sendFrame { FrameCodec.writeValue(.message, "gossip", into: &$0) }
        await waitUntil("the membership message") {
            b.seenEvents.contains { if case .membershipMessage("gossip", _) = $0 { true } else { false } }
        }
        XCTAssertTrue(raw.channel.isActive, "dropping a frame keeps the connection")
        XCTAssertEqual(b.receivedCount, 0, "nothing reaches the application")
        await raw.close()
        await b.shutdown()
    }
}
