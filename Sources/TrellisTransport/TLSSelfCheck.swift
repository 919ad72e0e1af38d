import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS

/// Checks a node's TLS context before it is used: a handshake of the context with itself, in
/// memory, as a client and a server. Each end verifies the other's certificate (this node's
/// own) against the CA, with the checks a peer makes — chain, signatures, validity dates,
/// key usage — so it succeeds exactly when a peer trusting the same CA would accept this node.
enum TLSSelfCheck {
    /// The error that ended the handshake, or `nil` if both ends completed it.
    static func failure(of context: NIOSSLContext) -> (any Error)? {
        let serverWatcher = CompletionWatcher()
        let clientWatcher = CompletionWatcher()
        let server = EmbeddedChannel(handlers: [NIOSSLServerHandler(context: context), serverWatcher])
        let client: EmbeddedChannel
        do {
            client = EmbeddedChannel(handlers: [try NIOSSLClientHandler(context: context, serverHostname: nil), clientWatcher])
        } catch {
            return error
        }
        defer {
            close(client)
            close(server)
        }
        do {
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
            server.connect(to: address, promise: nil)
            client.connect(to: address, promise: nil)
            // Each side's flight answers the other's, until neither has anything left to send.
            var moved = true
            while moved {
                moved = false
                while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                    try server.writeInbound(bytes)
                    moved = true
                }
                while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                    try client.writeInbound(bytes)
                    moved = true
                }
            }
            try client.throwIfErrorCaught()
            try server.throwIfErrorCaught()
        } catch {
            return error
        }
        guard serverWatcher.completed, clientWatcher.completed else {
            return NIOSSLError.handshakeFailed(.sslError([.eofDuringHandshake]))
        }
        return nil
    }

    /// Closes `channel` without waiting for the other end's close_notify, which nothing
    /// carries: its TLS shutdown times out at once on the embedded loop's clock.
    private static func close(_ channel: EmbeddedChannel) {
        channel.close(promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .hours(1))
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    /// Records that the TLS handshake completed on its channel.
    private final class CompletionWatcher: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private(set) var completed = false

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted? = event as? TLSUserEvent { completed = true }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
