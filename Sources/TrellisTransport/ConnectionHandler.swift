import Logging
import NIOCore
import TrellisWire

/// Drives one TCP connection on its event loop: splits frames, runs the handshake for its
/// role, then dispatches frames. Any protocol violation closes this connection only.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        /// We dialed `PeerID`.
        case connector(PeerID)
        /// The peer dialed us.
        case acceptor
    }

    private enum Phase {
        case awaitingChallenge(PeerID)
        case awaitingHello(nonce: [UInt8])
        case awaitingWelcome(PeerID, Handshake.Transcript)
        case established(PeerID, ChannelName)
        case closing
    }

    private let transport: Transport
    private let connection: Connection
    private let reader: FrameReader
    private var phase: Phase
    private var cumulation: ByteBuffer?
    private var handshakeTimeout: Scheduled<Void>?
    private var failureReason: String?
    private var isUp = false
    private var logger: Logger
    private var remote = "unknown"
    /// Application messages decoded from the current read, handed over together at its end.
    private var arrived: [InboundMessage] = []

    init(transport: Transport, connection: Connection, role: Role) {
        self.transport = transport
        self.connection = connection
        self.reader = FrameReader(maxFrameSize: transport.config.maxFrameSize)
        self.logger = transport.logger
        switch role {
        case .connector(let peer):
            phase = .awaitingChallenge(peer)
            logger[metadataKey: "peer"] = "\(peer)"
            logger[metadataKey: "channel"] = "\(connection.channelName ?? .default)"
        case .acceptor:
            phase = .awaitingHello(nonce: [])
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        remote = context.remoteAddress?.description ?? "unknown"
        logger[metadataKey: "remote"] = "\(remote)"
        guard connection.attach(context.channel) else {
            context.close(promise: nil)
            return
        }
        let timeout = transport.config.handshakeTimeout
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            self.fail(context, "handshake not completed within \(timeout)")
        }
        if case .awaitingHello = phase {
            let nonce = Handshake.nonce()
            phase = .awaitingHello(nonce: nonce)
            writeHandshake(context, .challenge, Handshake.challenge(nonce: nonce))
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closing = phase { return }
        var input = unwrapInboundIn(data)
        if var buffered = cumulation.take() {
            buffered.writeBuffer(&input)
            input = buffered
        }
        defer { deliverArrived() }
        do {
            while let frame = try reader.nextFrame(&input) {
                var body = frame
                try handle(try FrameCodec.decode(&body), context: context)
                if case .closing = phase { return }
            }
        } catch {
            fail(context, "\(error)")
            return
        }
        if input.readableBytes > 0 { cumulation = input }
    }

    private func deliverArrived() {
        guard !arrived.isEmpty else { return }
        let batch = arrived
        arrived.removeAll(keepingCapacity: true)
        transport.onMessages(batch)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.outbox.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, "I/O error: \(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        let partial = cumulation.map { " with \($0.readableBytes) byte(s) of a partial frame" } ?? ""
        let reason = connection.closedReason ?? failureReason ?? "connection closed by peer\(partial)"
        transport.connectionEnded(connection, wasUp: isUp, reason: reason)
        context.fireChannelInactive()
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) throws {
        switch (phase, frame) {
        case (.established(let peer, let channel), _):
            try dispatch(frame, from: peer, channel: channel, context: context)
        case (.awaitingChallenge(let peer), .challenge(let value)):
            guard let channel = connection.channelName else { throw WireError.malformedMessage("no channel") }
            let transcript = Handshake.Transcript(
                cluster: transport.config.clusterName, channel: channel.wireName(lane: connection.lane),
                connectorID: transport.localID.description, connectorMetadata: transport.metadataValue,
                acceptorNonce: try Handshake.readChallenge(value), connectorNonce: Handshake.nonce())
            writeHandshake(context, .hello, Handshake.hello(transcript, key: transport.key))
            phase = .awaitingWelcome(peer, transcript)
        case (.awaitingWelcome(let peer, let transcript), .welcome(let value)):
            let metadata = try Handshake.verifyWelcome(value, transcript: transcript, expected: peer, key: transport.key)
            guard let channel = connection.channelName else { throw WireError.malformedMessage("no channel") }
            established(peer, channel, context: context)
            isUp = true
            logger.debug("outbound connection up")
            transport.outboundUp(connection, peer: peer, metadata: metadata)
        case (.awaitingChallenge, .reject(let value)), (.awaitingWelcome, .reject(let value)):
            fail(context, "handshake rejected by peer: \(value["reason"]?.stringValue ?? "no reason given")")
        case (.awaitingHello(let nonce), .hello(let value)):
            acceptHello(value, nonce: nonce, context: context)
        default:
            throw WireError.malformedMessage("unexpected \(frame.kindName) frame during the handshake")
        }
    }

    private func acceptHello(_ value: Value, nonce: [UInt8], context: ChannelHandlerContext) {
        do throws(Handshake.Failure) {
            let (transcript, peer, _) = try Handshake.verifyHello(
                value, acceptorNonce: nonce, cluster: transport.config.clusterName, key: transport.key)
            guard transport.admitInbound(connection, from: peer, channel: ChannelName(wireName: transcript.channel)) else { throw .partitioned(peer) }
            let welcome = Handshake.welcome(
                transcript, acceptorID: transport.localID, metadata: transport.metadataValue, key: transport.key)
            writeHandshake(context, .welcome, welcome)
            logger[metadataKey: "peer"] = "\(peer)"
            logger[metadataKey: "channel"] = "\(transcript.channel)"
            established(peer, ChannelName(wireName: transcript.channel), context: context)
            logger.debug("inbound connection up")
        } catch {
            writeHandshake(context, .reject, Handshake.reject(error))
            transport.emit(.handshakeRejected(remote: remote, reason: error.description))
            fail(context, "rejected inbound handshake: \(error)")
        }
    }

    private func established(_ peer: PeerID, _ channel: ChannelName, context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        phase = .established(peer, channel)
        connection.outbox.open(context.channel)
    }

    private func dispatch(_ frame: Frame, from peer: PeerID, channel: ChannelName, context: ChannelHandlerContext) throws {
        if let pending = connection.pending {
            switch frame {
            case .reply(let id, let value): pending.complete(id, .success(value))
            case .replyError(let id, let message): pending.complete(id, .failure(.remoteFailure(message)))
            case .pong: transport.emit(.heartbeatAck(from: peer))
            case .metadata(let value) where channel == .membership:
                transport.emit(.metadataChanged(peer, try Handshake.metadata(from: value)))
            default: throw WireError.malformedMessage("unexpected \(frame.kindName) frame on an outbound connection")
            }
            return
        }
        switch frame {
        case .message(let value) where channel == .membership:
            transport.emit(.membershipMessage(value, from: peer))
        case .message(let value):
            arrived.append(InboundMessage(from: peer, channel: channel, payload: .value(value)))
        case .bytes(let bytes):
            arrived.append(InboundMessage(from: peer, channel: channel, payload: .bytes(bytes)))
        case .request(let id, let value):
            let message = InboundMessage(from: peer, channel: channel, payload: .value(value))
            transport.onRequest(message, Responder(connection: connection, id: id))
        case .ping:
            _ = connection.outbox.enqueue(.never) { FrameCodec.writeEmpty(.pong, into: &$0) }
        default:
            throw WireError.malformedMessage("unexpected \(frame.kindName) frame on an inbound connection")
        }
    }

    private func writeHandshake(_ context: ChannelHandlerContext, _ kind: FrameKind, _ value: Value) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        Framing.writeFrame(into: &buffer) { FrameCodec.writeValue(kind, value, into: &$0) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ reason: String) {
        if case .closing = phase { return }
        phase = .closing
        failureReason = reason
        handshakeTimeout?.cancel()
        logger.warning("closing connection: \(reason)")
        context.close(promise: nil)
    }
}

extension Frame {
    /// The frame's kind, for log lines.
    var kindName: String {
        switch self {
        case .challenge: return "challenge"
        case .hello: return "hello"
        case .welcome: return "welcome"
        case .reject: return "reject"
        case .ping: return "ping"
        case .pong: return "pong"
        case .metadata: return "metadata"
        case .message: return "message"
        case .bytes: return "bytes"
        case .request: return "request"
        case .reply: return "reply"
        case .replyError: return "reply-error"
        }
    }
}
