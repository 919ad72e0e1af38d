import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
@testable import TrellisTransport
import TrellisWire
import XCTest

/// A hand-driven client of a node's listener: it can complete a real handshake (it knows the
/// cookie) and then send anything, as a compromised or buggy peer would.
final class RawPeer: Sendable {
    let channel: any Channel
    private let inbox: NIOLockedValueBox<ByteBuffer>

    private init(channel: any Channel, inbox: NIOLockedValueBox<ByteBuffer>) {
        self.channel = channel
        self.inbox = inbox
    }

    /// A TCP connection to `node`'s listener, recording what the node sends.
    static func connect(to node: TestNode, group: any EventLoopGroup) async throws -> RawPeer {
        try await connect(port: node.id.port, tls: nil, group: group)
    }

    /// A connection to 127.0.0.1:`port` (a node, or a proxy in front of one), through TLS with
    /// `tls` unless it is `nil`, recording what comes back.
    static func connect(port: Int, tls: NIOSSLContext?, group: any EventLoopGroup) async throws -> RawPeer {
        let inbox = NIOLockedValueBox(ByteBuffer())
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try pipeline.addHandler(Recorder(inbox: inbox))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawPeer(channel: channel, inbox: inbox)
    }

    /// A connection to `node` that completed the handshake for `wireName` (`name` or
    /// `name#lane`), using `node`'s own cookie.
    static func authenticated(to node: TestNode, channel wireName: String = "default", group: any EventLoopGroup) async throws -> RawPeer {
        let raw = try await connect(to: node, group: group)
        try await raw.authenticate(with: node, channel: wireName)
        return raw
    }

    /// Completes the cookie handshake with `node` for `wireName`, as `mallory@127.0.0.1:1`.
    func authenticate(with node: TestNode, channel wireName: String = "default") async throws {
        guard case .challenge(let challenge) = try await nextFrame() else { throw RawPeerError.unexpectedFrame }
        let transcript = Handshake.Transcript(
            cluster: node.transport.config.clusterName, channel: wireName, connectorID: "mallory@127.0.0.1:1",
            connectorMetadata: Handshake.metadataValue(PeerMetadata()),
            acceptorNonce: try Handshake.readChallenge(challenge), connectorNonce: Handshake.nonce())
        try await sendFrame { FrameCodec.writeValue(.hello, Handshake.hello(transcript, key: node.transport.key), into: &$0) }
        guard case .welcome = try await nextFrame() else { throw RawPeerError.unexpectedFrame }
    }

    /// Sends a request and returns the node's answer.
    func request(_ value: Value) async throws -> Frame {
        try await sendFrame { FrameCodec.writeRequest(id: 1, value, into: &$0) }
        return try await nextFrame()
    }

    /// Writes the one frame `frame` writes (a `FrameCodec` writer: prefix, kind and payload).
    func sendFrame(_ frame: (inout ByteBuffer) -> Void) async throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        frame(&buffer)
        try await channel.writeAndFlush(buffer).get()
    }

    /// The next frame the node sent, waiting up to `timeout` for it.
    func nextFrame(timeout: Duration = .seconds(5)) async throws -> Frame {
        let deadline = ContinuousClock.now + timeout
        let reader = FrameReader()
        while true {
            let frame = try inbox.withLockedValue { inbox -> ByteBuffer? in
                let frame = try reader.nextFrame(&inbox)
                inbox.discardReadBytes()
                return frame
            }
            if var frame { return try FrameCodec.decode(&frame) }
            guard ContinuousClock.now < deadline else { throw RawPeerError.noFrame(timeout) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Closes the connection if it is still open.
    func close() async {
        try? await channel.close()
    }

    private final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let inbox: NIOLockedValueBox<ByteBuffer>

        init(inbox: NIOLockedValueBox<ByteBuffer>) { self.inbox = inbox }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            _ = inbox.withLockedValue { $0.writeBuffer(&bytes) }
        }
    }
}

enum RawPeerError: Error {
    case unexpectedFrame
    case noFrame(Duration)
}

/// Log lines at warning level and above, for tests that check what a node reports.
final class CapturedLog: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    /// A logger writing into this capture.
    func logger(_ label: String) -> Logger {
        Logger(label: label) { _ in Handler(lines: self.lines) }
    }

    /// The captured lines containing `text`.
    func lines(containing text: String) -> [String] {
        lines.withLockedValue { $0.filter { $0.contains(text) } }
    }

    private struct Handler: LogHandler {
        let lines: NIOLockedValueBox<[String]>
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .warning

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            lines.withLockedValue { $0.append("\(event.level): \(event.message)") }
        }
    }
}
