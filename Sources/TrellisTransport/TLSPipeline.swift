import NIOCore
import NIOSSL
import NIOTLS

extension Transport {
    /// Puts TLS in front of a new connection's `ConnectionHandler` when the cluster uses it
    /// (`config.tls`); adds nothing otherwise, so plain TCP connections have no extra handler.
    ///
    /// The `ConnectionHandler` still runs its handshake timeout and admission limits from
    /// `channelActive`, which the TLS handler passes on at once: a peer that never completes
    /// the TLS handshake is closed by `handshakeTimeout`, as one that never says hello.
    func addTLS(to channel: any Channel, accepted: Bool) throws {
        guard let tls = config.tls else { return }
        let pipeline = channel.pipeline.syncOperations
        if accepted {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
        } else {
            try pipeline.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: nil))
        }
        try pipeline.addHandler(TLSFailureReporter(transport: self, accepted: accepted))
    }
}

/// Sits between the TLS handler and the `ConnectionHandler`: replaces TLS errors by a
/// `TLSFailure`, which the `ConnectionHandler` logs as the reason it closes the connection,
/// and reports an accepted connection whose TLS handshake failed as `.handshakeRejected` —
/// unless the peer merely hung up during it, which a plain connection closed before its
/// hello is not reported as either (port scans and TCP health checks do that).
///
/// It drops `NIOSSLError.uncleanShutdown` (the peer closed TCP without a TLS close_notify):
/// `channelInactive` follows at once and reports the close, as on a plain connection.
final class TLSFailureReporter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let transport: Transport
    private let accepted: Bool
    private var handshakeCompleted = false

    init(transport: Transport, accepted: Bool) {
        self.transport = transport
        self.accepted = accepted
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { handshakeCompleted = true }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .uncleanShutdown? = error as? NIOSSLError { return }
        guard let failure = TLSFailure(error) else {
            context.fireErrorCaught(error)
            return
        }
        if accepted, !handshakeCompleted, failure.kind != .closedDuringHandshake {
            let remote = context.remoteAddress?.description ?? "unknown"
            transport.emit(.handshakeRejected(remote: remote, reason: failure.description))
        }
        context.fireErrorCaught(failure)
    }
}
