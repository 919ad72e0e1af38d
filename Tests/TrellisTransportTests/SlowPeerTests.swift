import NIOCore
import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Peers that start a frame and stall, or trickle it: closed by `frameCompletionTimeout` after
/// the handshake and by `handshakeTimeout` before it, and only them. Frames that are merely
/// slow, each within the timeout, still arrive.
final class SlowPeerTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testStalledFrameAfterHandshakeClosesOnlyThatConnection() async throws {
        let log = CapturedLog()
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group) {
            $0.limits.frameCompletionTimeout = .milliseconds(300)
            $0.logger = log.logger("b")
        }
        let reply = try await a.transport.request("before", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, "before")

        let slow = try await RawPeer.authenticated(to: b, group: group)
        let start = ContinuousClock.now
        // A 100-byte frame, trickled a byte every 20 ms: it would take 2 s.
        try await slow.channel.send([0, 0, 0, 100, FrameKind.bytes.rawValue])
        for _ in 0..<100 where slow.channel.isActive {
            try? await slow.channel.send([0xab])
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = await slow.channel.closes(within: .seconds(2))
        XCTAssertTrue(closed, "a trickled frame must not outlive frameCompletionTimeout")
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(280), "not before the timeout")
        await waitUntil("the close is logged") { !log.lines(containing: "frameCompletionTimeout").isEmpty }
        XCTAssertTrue(log.lines(containing: "frameCompletionTimeout").allSatisfy { $0.hasPrefix("warning") })

        let later = try await a.transport.request("after", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(later, "after")
        XCTAssertEqual(b.receivedCount, 0, "the partial frame is never delivered")
        await a.shutdown()
        await b.shutdown()
    }

    func testAPeerThatNeverReadsItsRepliesIsClosedAtMaxUnsentBytes() async throws {
        let log = CapturedLog()
        let b = try await TestNode.start("b", group: group) {
            $0.maxFrameSize = 128 * 1024
            $0.outboxHighWatermark = 256 * 1024
            $0.limits.maxUnsentBytes = 1024 * 1024
            $0.logger = log.logger("b")
        }
        let greedy = try await RawPeer.authenticated(to: b, group: group)
        try await greedy.channel.setOption(ChannelOptions.autoRead, value: false).get()
        // 64 KiB requests, echoed: 32 MiB of replies that the peer never reads, several times
        // what the kernel's socket buffers hold, so the rest piles up in the node.
        let payload = Value.bytes([UInt8](repeating: 0x5a, count: 64 * 1024))
        var sent = 0
        while sent < 512, greedy.channel.isActive {
            try? await greedy.sendFrame { FrameCodec.writeRequest(id: UInt64(sent), payload, into: &$0) }
            sent += 1
        }
        await waitUntil("the node gives up on the peer", timeout: .seconds(10)) { !log.lines(containing: "maxUnsentBytes").isEmpty }
        XCTAssertTrue(log.lines(containing: "maxUnsentBytes").allSatisfy { $0.hasPrefix("warning") })

        let a = try await TestNode.start("a", group: group)
        let reply = try await a.transport.request("still serving", to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, "still serving")
        await greedy.close()
        await a.shutdown()
        await b.shutdown()
    }

    func testEachSlowFrameGetsItsOwnDeadline() async throws {
        let b = try await TestNode.start("b", group: group) { $0.limits.frameCompletionTimeout = .seconds(1) }
        let peer = try await RawPeer.authenticated(to: b, group: group)
        // Three 4 KiB frames, each sent in 4 pieces 100 ms apart, the next one starting in the
        // same write that ends the previous one: 1.2 s in all, under 0.5 s per frame.
        var stream: [UInt8] = []
        for frame in 0..<3 {
            stream += [0, 0, 0x10, 0x01, FrameKind.bytes.rawValue] + [UInt8](repeating: UInt8(frame), count: 4096)
        }
        let piece = stream.count / 12
        for index in 0..<12 {
            let end = index == 11 ? stream.count : (index + 1) * piece
            try await peer.channel.send(Array(stream[index * piece..<end]))
            try await Task.sleep(for: .milliseconds(100))
        }
        await waitUntil("three frames") { b.receivedCount == 3 }
        XCTAssertTrue(peer.channel.isActive, "slow but steady frames keep the connection")
        // Each frame straddles reads, so each went through the handler's reused partial-frame
        // buffer: the payloads delivered earlier must not change when it is reused.
        XCTAssertEqual(b.received.map { message -> [UInt8] in
            guard case .bytes(let bytes) = message.payload else { return [] }
            return Array(bytes.readableBytesView)
        }, (0..<3).map { [UInt8](repeating: UInt8($0), count: 4096) })
        await peer.close()
        await b.shutdown()
    }

    func testTrickledHandshakeIsClosedByHandshakeTimeout() async throws {
        let b = try await TestNode.start("b", group: group) { $0.handshakeTimeout = .milliseconds(300) }
        let raw = try await RawPeer.connect(to: b, group: group)
        try await raw.channel.send([0, 0, 0, 200, FrameKind.hello.rawValue])
        for _ in 0..<100 where raw.channel.isActive {
            try? await raw.channel.send([0x80])
            try await Task.sleep(for: .milliseconds(20))
        }
        let closed = await raw.channel.closes(within: .seconds(2))
        XCTAssertTrue(closed, "progress does not extend the handshake timeout")
        await b.shutdown()
    }

    func testOversizedHandshakeFrameClosesAtOnceButLargeFramesPassAfterIt() async throws {
        let b = try await TestNode.start("b", group: group) {
            $0.handshakeTimeout = .seconds(60)
            $0.limits.maxHandshakeFrameSize = 1024
        }
        let raw = try await RawPeer.connect(to: b, group: group)
        try await raw.channel.send([0, 0, 0x04, 0x01, FrameKind.hello.rawValue])
        let closed = await raw.channel.closes(within: .seconds(2))
        XCTAssertTrue(closed, "a 1025-byte frame before the handshake is refused from its prefix")

        let peer = try await RawPeer.authenticated(to: b, group: group)
        try await peer.sendFrame { FrameCodec.writeBytes([UInt8](repeating: 1, count: 100_000), into: &$0) }
        await waitUntil("a large frame after the handshake") { b.receivedCount == 1 }
        await peer.close()
        await b.shutdown()
    }
}
