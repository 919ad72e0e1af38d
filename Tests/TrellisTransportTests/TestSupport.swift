import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

/// A started transport plus everything it received, for assertions.
final class TestNode: Sendable {
    let transport: Transport
    private let messages: NIOLockedValueBox<[InboundMessage]>
    private let events: NIOLockedValueBox<[TransportEvent]>
    private let drain: Task<Void, Never>

    var id: PeerID { transport.localID }

    static func start(
        _ name: String, port: Int = 0, cluster: String = "test", cookie: String = "secret",
        tags: [String: String] = [:], group: any EventLoopGroup,
        configure: (inout TransportConfig) -> Void = { _ in },
        onRequest: @escaping @Sendable (InboundMessage, Responder) -> Void = { message, responder in
            if case .value(let value) = message.payload { responder.reply(value) }
        }
    ) async throws -> TestNode {
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = .critical
        var config = TransportConfig(
            name: name, port: port, clusterName: cluster, cookie: cookie,
            metadata: PeerMetadata(tags: tags, capabilities: ["test"]), logger: logger)
        configure(&config)
        let messages = NIOLockedValueBox<[InboundMessage]>([])
        let transport = try await Transport.start(
            config, group: group, onMessages: { batch in messages.withLockedValue { $0 += batch } },
            onRequest: onRequest)
        return TestNode(transport: transport, messages: messages)
    }

    private init(transport: Transport, messages: NIOLockedValueBox<[InboundMessage]>) {
        self.transport = transport
        let events = NIOLockedValueBox<[TransportEvent]>([])
        self.drain = Task {
            for await event in transport.events { events.withLockedValue { $0.append(event) } }
        }
        self.events = events
        self.messages = messages
    }

    var received: [InboundMessage] { messages.withLockedValue { $0 } }
    var receivedCount: Int { messages.withLockedValue { $0.count } }
    var seenEvents: [TransportEvent] { events.withLockedValue { $0 } }

    func shutdown() async {
        await transport.shutdown()
        await drain.value
    }

    /// Stops recording events, for a transport that is abandoned rather than shut down.
    func stopWatching() { drain.cancel() }
}

/// Polls `condition` every 5 ms until it holds or `timeout` passes.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), file: StaticString = #filePath, line: UInt = #line,
    _ condition: () -> Bool
) async {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline {
            XCTFail("timed out waiting for \(what)", file: file, line: line)
            return
        }
        try? await Task.sleep(for: .milliseconds(5))
    }
}

extension TransportEvent {
    var isConnectionUp: Bool { if case .connectionUp = self { return true } else { return false } }
    var isConnectionDown: Bool { if case .connectionDown = self { return true } else { return false } }
    var connectFailedReason: String? { if case .connectFailed(_, let reason) = self { return reason } else { return nil } }
    var rejectedReason: String? { if case .handshakeRejected(_, let reason) = self { return reason } else { return nil } }
    var isHeartbeatAck: Bool { if case .heartbeatAck = self { return true } else { return false } }
}

/// A raw TCP connection to `peer`'s listener, to send it arbitrary bytes.
func rawConnection(to peer: PeerID, group: any EventLoopGroup) async throws -> any Channel {
    try await ClientBootstrap(group: group).connect(host: peer.host, port: peer.port).get()
}

extension Channel {
    /// Writes `bytes` and flushes.
    func send(_ bytes: [UInt8]) async throws {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await writeAndFlush(buffer).get()
    }

    /// Whether the channel closes (the peer hung up) within `timeout`.
    func closes(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isActive {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}
