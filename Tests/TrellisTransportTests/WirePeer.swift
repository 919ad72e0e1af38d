import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
@testable import TrellisTransport
import TrellisWire

/// A hand-driven connector, like `RawPeer`, that dials any port on 127.0.0.1 (a proxy in front
/// of a node) and can run TLS under its connection with a context of the test's choosing.
final class WirePeer: Sendable {
    let channel: any Channel
    private let inbox: NIOLockedValueBox<ByteBuffer>

    private init(channel: any Channel, inbox: NIOLockedValueBox<ByteBuffer>) {
        self.channel = channel
        self.inbox = inbox
    }

    /// A connection to 127.0.0.1:`port`, through TLS with `tls` unless it is `nil`.
    static func connect(port: Int, tls: NIOSSLContext?, group: any EventLoopGroup) async throws -> WirePeer {
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
        return WirePeer(channel: channel, inbox: inbox)
    }

    /// Completes the cookie handshake with `node` for the default channel.
    func authenticate(with node: TestNode) async throws {
        guard case .challenge(let challenge) = try await nextFrame() else { throw RawPeerError.unexpectedFrame }
        let transcript = Handshake.Transcript(
            cluster: node.transport.config.clusterName, channel: ChannelName.default.name, connectorID: "wire@127.0.0.1:1",
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

    /// Writes one frame whose body (kind byte and payload) `body` writes.
    private func sendFrame(_ body: (inout ByteBuffer) -> Void) async throws {
        var buffer = channel.allocator.buffer(capacity: 64)
        Framing.writeFrame(into: &buffer, body)
        try await channel.writeAndFlush(buffer).get()
    }

    /// The next frame the node sent, waiting up to `timeout` for it.
    private func nextFrame(timeout: Duration = .seconds(5)) async throws -> Frame {
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
