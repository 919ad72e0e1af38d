import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP forwarder on 127.0.0.1 that sits between a client and a node's listener and keeps
/// every byte that crosses it, per direction: what a capture on the wire would see.
final class RecordingProxy: Sendable {
    /// The port clients connect to.
    let port: Int
    private let server: any Channel
    private let toTarget: NIOLockedValueBox<[UInt8]>
    private let fromTarget: NIOLockedValueBox<[UInt8]>

    /// A proxy forwarding each connection to 127.0.0.1:`targetPort`.
    static func start(forwardingTo targetPort: Int, group: any EventLoopGroup) async throws -> RecordingProxy {
        let toTarget = NIOLockedValueBox<[UInt8]>([])
        let fromTarget = NIOLockedValueBox<[UInt8]>([])
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                client.eventLoop.makeCompletedFuture {
                    let forwarder = Forwarder(recording: toTarget, dialing: targetPort, recordingReplies: fromTarget)
                    try client.pipeline.syncOperations.addHandler(forwarder)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RecordingProxy(server: server, toTarget: toTarget, fromTarget: fromTarget)
    }

    private init(server: any Channel, toTarget: NIOLockedValueBox<[UInt8]>, fromTarget: NIOLockedValueBox<[UInt8]>) {
        self.server = server
        self.port = server.localAddress?.port ?? 0
        self.toTarget = toTarget
        self.fromTarget = fromTarget
    }

    /// Whether `text` crossed the proxy towards the node.
    func sentToTarget(contains text: String) -> Bool { toTarget.withLockedValue { $0.containsUTF8(text) } }
    /// Whether `text` crossed the proxy from the node.
    func sentByTarget(contains text: String) -> Bool { fromTarget.withLockedValue { $0.containsUTF8(text) } }
    /// How many bytes crossed, both directions together.
    var byteCount: Int { toTarget.withLockedValue(\.count) + fromTarget.withLockedValue(\.count) }

    /// Stops accepting; forwarded connections close when either end does.
    func stop() async {
        try? await server.close()
    }

    /// Copies what one side sends to the other and records it; closes the other when its own
    /// side closes. On the client's side, it dials the target once the client is connected,
    /// and reads from the client only then.
    private final class Forwarder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let recording: NIOLockedValueBox<[UInt8]>
        private let target: (port: Int, recording: NIOLockedValueBox<[UInt8]>)?
        private var partner: (any Channel)?

        init(recording: NIOLockedValueBox<[UInt8]>, partner: any Channel) {
            self.recording = recording
            self.target = nil
            self.partner = partner
        }

        init(recording: NIOLockedValueBox<[UInt8]>, dialing port: Int, recordingReplies replies: NIOLockedValueBox<[UInt8]>) {
            self.recording = recording
            self.target = (port, replies)
        }

        func channelActive(context: ChannelHandlerContext) {
            context.fireChannelActive()
            guard let target else { return }
            let client = context.channel
            let this = NIOLoopBound(self, eventLoop: context.eventLoop)
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Forwarder(recording: target.recording, partner: client))
                    }
                }
                .connect(host: "127.0.0.1", port: target.port)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        this.value.partner = channel
                        client.read()
                    case .failure:
                        client.close(promise: nil)
                    }
                }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = unwrapInboundIn(data)
            recording.withLockedValue { $0 += bytes.readableBytesView }
            partner?.writeAndFlush(bytes, promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.read()
            context.fireChannelReadComplete()
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner?.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether the UTF-8 bytes of `text` occur in this array.
    func containsUTF8(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
