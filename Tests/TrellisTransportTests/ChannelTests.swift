import NIOCore
import NIOEmbedded
import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Named channels: parallel connections that keep order per key, and monotonic channels that
/// replace queued messages with newer ones of the same key.
final class ChannelTests: XCTestCase {
    /// Two nodes, `a` and `b`, both configured with `settings` for `channel`.
    private func startPair(
        carrying channel: ChannelName, _ settings: ChannelSettings, group: any EventLoopGroup
    ) async throws -> (TestNode, TestNode) {
        let configure: (inout TransportConfig) -> Void = { $0.channelSettings[channel] = settings }
        return (try await TestNode.start("a", group: group, configure: configure), try await TestNode.start("b", group: group, configure: configure))
    }

    func testParallelConnectionsKeepOrderPerKey() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let fan: ChannelName = "fan"
        let (a, b) = try await startPair(carrying: fan, ChannelSettings(parallelism: 4), group: group)
        let keys = (0..<16).map { "key\($0)" }
        for sequence in 0..<500 {
            for key in keys { try await a.transport.send(.array([.string(key), .int(Int64(sequence))]), to: b.id, channel: fan, key: key) }
        }
        await waitUntil("every message arrives") { b.receivedCount == 500 * keys.count }
        var last: [String: Int64] = [:]
        for message in b.received {
            XCTAssertEqual(message.channel, fan, "the lane suffix never shows")
            guard case .value(.array(let parts)) = message.payload, case .string(let key) = parts[0], case .int(let n) = parts[1]
            else { return XCTFail("unexpected \(message.payload)") }
            XCTAssertEqual(n, (last[key] ?? -1) + 1, "\(key) in order")
            last[key] = n
        }
        let lanes = a.transport.state.withLockedValue { $0.links.keys.filter { $0.channel == fan }.map(\.lane) }
        XCTAssertGreaterThan(Set(lanes).count, 1, "the keys spread over several connections")
        XCTAssertTrue(lanes.allSatisfy { (0..<4).contains($0) })
        await a.shutdown()
        await b.shutdown()
        try await group.shutdownGracefully()
    }

    /// A key's connection is its `StableHash` modulo the parallelism: the same on every node,
    /// and spread over all of a channel's connections.
    func testAKeysConnectionIsItsStableHashModuloTheParallelism() {
        let settings = ChannelSettings(parallelism: 4)
        for key in ["a", "game-42", "lane7"] {
            XCTAssertEqual(settings.connection(forKey: key), Int(StableHash.hash64(Array(key.utf8)) % 4), key)
        }
        XCTAssertEqual(Set((0..<64).map { settings.connection(forKey: "k\($0)") }), [0, 1, 2, 3])
        XCTAssertEqual(ChannelSettings().connection(forKey: "anything"), 0)
    }

    /// A request's key picks its connection as a send's does, and `eventLoop(for:key:)` names
    /// that connection's loop, so a caller pinned there is resumed without a thread switch.
    func testKeyedRequestsGoOnTheirKeysConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let calls: ChannelName = "calls"
        let (a, b) = try await startPair(carrying: calls, ChannelSettings(parallelism: 2), group: group)
        for key in (0..<8).map({ "caller\($0)" }) {
            let loop = try XCTUnwrap(a.transport.eventLoop(for: b.id, channel: calls, key: key))
            let reply = try await a.transport.request(.string(key), to: b.id, channel: calls, key: key, timeout: .seconds(5))
            XCTAssertEqual(reply, .string(key))
            let link = LinkKey(peer: b.id, channel: calls, lane: ChannelSettings(parallelism: 2).connection(forKey: key))
            let connection = a.transport.state.withLockedValue { $0.links[link]?.connection }
            XCTAssertTrue(connection?.eventLoop === loop, "\(key): the loop is its connection's")
        }
        let lanes = a.transport.state.withLockedValue { $0.links.keys.filter { $0.channel == calls }.map(\.lane) }
        XCTAssertEqual(Set(lanes), [0, 1], "the keys spread over both connections")
        await a.shutdown()
        await b.shutdown()
        try await group.shutdownGracefully()
    }

    func testMonotonicOutboxKeepsOnlyTheLatestQueuedMessagePerKey() throws {
        var config = TransportConfig(name: "t", clusterName: "c", cookie: "k")
        config.outboxHighWatermark = 1 << 20
        config.maxFrameSize = 1 << 20
        let outbox = Outbox(config)
        for (key, value) in [("x", 1), ("y", 1), ("x", 2), ("x", 3), ("y", 2), ("z", 1)] {
            _ = outbox.enqueueLatest(.never, key: key) { FrameCodec.writeValue(.message, .array([.string(key), .int(Int64(value))]), into: &$0) }
        }
        _ = outbox.enqueue(.never) { FrameCodec.writeValue(.message, "plain", into: &$0) }
        let channel = EmbeddedChannel()
        outbox.open(channel)
        var written = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        let reader = FrameReader(maxFrameSize: 1 << 20)
        var values: [Value] = []
        while var body = try reader.nextFrame(&written) {
            guard case .message(let value) = try FrameCodec.decode(&body) else { return XCTFail("not a message") }
            values.append(value)
        }
        XCTAssertEqual(values, ["plain", .array(["x", 3]), .array(["y", 2]), .array(["z", 1])])
        _ = try channel.finish()
    }

    func testALeadingFrameIsWrittenAtOnceAndTheRestOfItsBurstInOneWrite() throws {
        let outbox = Outbox(TransportConfig(name: "t", clusterName: "c", cookie: "k"))
        let channel = EmbeddedChannel()
        outbox.open(channel)
        _ = outbox.enqueue(.never, flush: .leading) { FrameCodec.writeRequest(id: 1, "first", into: &$0) }
        XCTAssertEqual(try Self.frames(in: channel.readOutbound(as: ByteBuffer.self)), 1, "written before the loop's tick ends")
        _ = outbox.enqueue(.never, flush: .leading) { FrameCodec.writeRequest(id: 2, "second", into: &$0) }
        _ = outbox.enqueue(.never) { FrameCodec.writeValue(.message, "third", into: &$0) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "the rest of the burst waits for the scheduled flush")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try Self.frames(in: channel.readOutbound(as: ByteBuffer.self)), 2, "in one write")
        _ = outbox.enqueue(.never) { FrameCodec.writeValue(.message, "coalesced", into: &$0) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "a coalesced frame waits even when it is the first")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try Self.frames(in: channel.readOutbound(as: ByteBuffer.self)), 1)
        _ = try channel.finish()
    }

    func testARequestLeadsOnlyWhileItsPeerMaySleepAndTheLoopsAreNotBusy() {
        XCTAssertEqual(Transport.requestFlush(othersOutstanding: false, busyWait: .off, saturated: false), .leading, "the peer may sleep")
        XCTAssertEqual(Transport.requestFlush(othersOutstanding: true, busyWait: .off, saturated: false), .leading, "the peer may sleep")
        XCTAssertEqual(Transport.requestFlush(othersOutstanding: false, busyWait: .off, saturated: true), .coalesced, "the loops are busy")
        XCTAssertEqual(Transport.requestFlush(othersOutstanding: true, busyWait: .lowLatency, saturated: false), .coalesced, "the peer polls")
        XCTAssertEqual(Transport.requestFlush(othersOutstanding: false, busyWait: .lowLatency, saturated: false), .leading, "a lone request leads")
    }

    /// The number of whole frames in one write.
    private static func frames(in written: ByteBuffer?) throws -> Int {
        var buffer = try XCTUnwrap(written)
        let reader = FrameReader(maxFrameSize: 1 << 20)
        var count = 0
        while try reader.nextFrame(&buffer) != nil { count += 1 }
        XCTAssertEqual(buffer.readableBytes, 0, "only whole frames")
        return count
    }

    func testMonotonicChannelDeliversTheLatestValueOfEveryKey() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let state: ChannelName = "state"
        let (a, b) = try await startPair(carrying: state, ChannelSettings(parallelism: 2, monotonic: true), group: group)
        let keys = (0..<8).map { "gauge\($0)" }
        for round in 0..<2_000 {
            for key in keys { try await a.transport.send(.array([.string(key), .int(Int64(round))]), to: b.id, channel: state, key: key) }
        }
        await waitUntil("the last round arrives for every key") {
            let latest = Self.latest(b.received)
            return keys.allSatisfy { latest[$0] == 1_999 }
        }
        XCTAssertLessThanOrEqual(b.receivedCount, 2_000 * keys.count)
        await a.shutdown()
        await b.shutdown()
        try await group.shutdownGracefully()
    }

    private static func latest(_ messages: [InboundMessage]) -> [String: Int64] {
        var latest: [String: Int64] = [:]
        for message in messages {
            guard case .value(.array(let parts)) = message.payload, case .string(let key) = parts[0], case .int(let n) = parts[1]
            else { continue }
            latest[key] = max(latest[key] ?? -1, n)
        }
        return latest
    }

    func testLaneSuffixesAreStrippedFromWireNames() {
        XCTAssertEqual(ChannelName(wireName: "fan#3"), "fan")
        XCTAssertEqual(ChannelName(wireName: "fan"), "fan")
        XCTAssertEqual(ChannelName(wireName: "odd#name"), "odd#name")
        XCTAssertEqual(ChannelName("fan").wireName(lane: 2), "fan#2")
        XCTAssertEqual(ChannelName("fan").wireName(lane: 0), "fan")
    }
}
