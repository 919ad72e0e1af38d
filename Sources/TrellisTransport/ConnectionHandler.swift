import Logging
import Metrics
import NIOCore
import TrellisWire

/// Drives one TCP connection on its event loop: splits frames, runs the handshake for its
/// role, then dispatches frames. A protocol violation, a stalled frame or handshake, or an
/// accepted connection over `ConnectionLimits` closes this connection only.
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
    private let limits: ConnectionLimits
    /// Splits frames; capped at `maxHandshakeFrameSize` until the handshake completes.
    private var reader: FrameReader
    private var phase: Phase
    /// The start of a frame still incomplete at the end of a read, copied out of NIO's read
    /// buffer: holding on to that buffer would keep NIO from reusing it, and appending the next
    /// read to it would copy all of it into fresh memory.
    private var cumulation: ByteBuffer?
    /// An emptied `cumulation` kept for the next incomplete frame, so a stream of frames that
    /// straddle reads reuses one buffer.
    private var spareCumulation: ByteBuffer?
    /// The largest `spareCumulation` kept: a buffer grown for one huge frame is let go.
    private static let largestSpareCumulation = 1 << 20
    private var handshakeTimeout: Scheduled<Void>?
    /// When the first byte of the frame still incomplete in `cumulation` arrived.
    private var partialSince: NIODeadline?
    /// Checks that the partial frame completes within `frameCompletionTimeout`; at most one
    /// is scheduled, re-armed for the next partial frame when it fires.
    private var frameTimer: Scheduled<Void>?
    /// The admission gate of an accepted connection; `nil` on outbound ones.
    private var gate: InboundGate?
    /// The remote address an accepted connection is counted against, once admitted.
    private var admittedHost: String?
    private var failureReason: String?
    /// Whether the handshake completed.
    private var isUp = false
    /// Whether a frame refused on this connection's channel was logged at error level already.
    private var reportedRefusedFrame = false
    private var logger: Logger
    private var remote = "unknown"
    /// This connection's channel's traffic metrics, once the handshake completed.
    private var metrics: ChannelMetrics?
    /// Keeps the event loop polling after each read, for the next message's sake; `nil` when off.
    private let busyWait: BusyWaitMark?

    init(transport: Transport, connection: Connection, role: Role) {
        self.transport = transport
        self.connection = connection
        self.limits = transport.config.limits
        self.busyWait = BusyWaitMark(transport.config.busyWait)
        self.reader = FrameReader(maxFrameSize: transport.config.limits.maxHandshakeFrameSize)
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
        if case .awaitingHello = phase, !admit(context) { return }
        if busyWait != nil, case .unavailable(firstTime: true) = EventLoopPoller.install(for: context.channel) {
            logger.warning("busy waiting is on, but this event loop's epoll descriptor cannot be found (it needs Linux and /proc/self); the loop sleeps as usual")
        }
        guard connection.attach(context.channel) else {
            context.close(promise: nil)
            return
        }
        let timeout = transport.config.handshakeTimeout
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) {
            self.fail(context, "\(ConnectionViolation.handshakeTimeout(timeout))")
        }
        if case .awaitingHello = phase {
            let nonce = Handshake.nonce()
            phase = .awaitingHello(nonce: nonce)
            writeHandshake(context, .challenge, Handshake.challenge(nonce: nonce))
        }
        context.fireChannelActive()
    }

    /// Counts an accepted connection against the limits; closes it at once when over them.
    private func admit(_ context: ChannelHandlerContext) -> Bool {
        let gate = transport.inboundGate
        self.gate = gate
        let host = context.remoteAddress?.ipAddress ?? remote
        if let refusal = gate.admit(host: host) {
            writeHandshake(context, .reject, Handshake.reject(refusal))
            fail(context, "\(refusal)")
            return false
        }
        admittedHost = host
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closing = phase { return }
        LoopActivity.noteIO(keepingPolling: busyWait)
        var input = unwrapInboundIn(data)
        let bytesRead = input.readableBytes
        let continuesFrame = cumulation != nil
        if var buffered = cumulation.take() {
            buffered.writeBuffer(&input)
            input = buffered
        }
        // Counted only on established connections: not the handshake's reads.
        let metrics = self.metrics
        var frames = 0
        defer { metrics?.received(messages: frames, bytes: bytesRead) }
        var completedFrame = false
        do {
            while true {
                if case .established(let peer, let channel) = phase {
                    if try receive(&input, from: peer, channel: channel, frames: &frames, context: context) {
                        completedFrame = true
                    }
                    break
                }
                guard let frame = try reader.nextFrame(&input) else { break }
                completedFrame = true
                frames += 1
                var body = frame
                try handshake(try FrameCodec.decode(&body), context: context)
                if case .closing = phase { return }
            }
        } catch WireError.frameTooLarge(let length, let limit) where !isUp {
            fail(context, "\(ConnectionViolation.handshakeFrameTooLarge(length: length, limit: limit))")
            return
        } catch {
            fail(context, "\(error)")
            return
        }
        guard input.readableBytes > 0 else {
            partialSince = nil
            if continuesFrame, input.capacity <= Self.largestSpareCumulation {
                input.clear()
                spareCumulation = input
            }
            return
        }
        if continuesFrame {
            input.discardReadBytes()
            cumulation = input
        } else {
            var own = spareCumulation.take() ?? context.channel.allocator.buffer(capacity: input.readableBytes)
            own.writeBuffer(&input)
            cumulation = own
        }
        if completedFrame || !continuesFrame {
            partialSince = .now()
            if frameTimer == nil { armFrameTimer(context) }
        }
    }

    /// Schedules the check that the partial frame completes in time.
    private func armFrameTimer(_ context: ChannelHandlerContext) {
        guard let since = partialSince else { return }
        let deadline = since + TimeAmount(limits.frameCompletionTimeout)
        frameTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.frameTimer = nil
            self.checkFrameProgress(context)
        }
    }

    /// Closes the connection if its partial frame is overdue; otherwise (a later frame is
    /// partial now) waits for that one's deadline.
    private func checkFrameProgress(_ context: ChannelHandlerContext) {
        guard let since = partialSince else { return }
        let timeout = limits.frameCompletionTimeout
        guard NIODeadline.now() - since >= TimeAmount(timeout) else {
            armFrameTimer(context)
            return
        }
        let received = cumulation?.readableBytes ?? 0
        let length = cumulation.flatMap { $0.getInteger(at: $0.readerIndex, as: UInt32.self) }.map(Int.init)
        fail(context, "\(ConnectionViolation.frameIncomplete(length: length, received: received, timeout: timeout))")
    }

    /// Dispatches the complete frames in `input` on an established connection, and hands the
    /// application messages among them over together, also when a frame fails. Reads no mutable
    /// state of the handler per frame. Returns whether `input` held a complete frame.
    private func receive(
        _ input: inout ByteBuffer, from peer: PeerID, channel: ChannelName, frames: inout Int, context: ChannelHandlerContext
    ) throws -> Bool {
        let reader = self.reader
        var arrived: [InboundMessage] = []
        defer { if !arrived.isEmpty { transport.onMessages(arrived) } }
        var completed = false
        while let frame = try reader.nextFrame(&input) {
            completed = true
            frames += 1
            var body = frame
            try dispatch(try FrameCodec.decode(&body), from: peer, channel: channel, context: context, into: &arrived)
        }
        return completed
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.outbox.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let violation = error as? ConnectionViolation { return fail(context, "\(violation)") }
        fail(context, "I/O error: \(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        frameTimer?.cancel()
        if let admittedHost { gate?.ended(host: admittedHost, handshaking: !isUp) }
        let partial = cumulation.map { " with \($0.readableBytes) byte(s) of a partial frame" } ?? ""
        let reason = connection.closedReason ?? failureReason ?? "connection closed by peer\(partial)"
        if isUp { metrics?.closed() }
        transport.connectionEnded(connection, wasUp: isUp, reason: reason)
        context.fireChannelInactive()
    }

    /// Handles a frame of the handshake; frames of an established connection go to `dispatch`.
    private func handshake(_ frame: Frame, context: ChannelHandlerContext) throws {
        switch (phase, frame) {
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
            let channel = ChannelName(wireName: transcript.channel)
            guard transport.config.accepts(channel) else { throw .channelNotAccepted(channel) }
            guard transport.admitInbound(connection, from: peer, channel: channel) else { throw .partitioned(peer) }
            let welcome = Handshake.welcome(
                transcript, acceptorID: transport.localID, metadata: transport.metadataValue, key: transport.key)
            writeHandshake(context, .welcome, welcome)
            logger[metadataKey: "peer"] = "\(peer)"
            logger[metadataKey: "channel"] = "\(transcript.channel)"
            established(peer, channel, context: context)
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
        isUp = true
        if let admittedHost { gate?.authenticated(host: admittedHost) }
        reader = FrameReader(maxFrameSize: transport.config.maxFrameSize)
        phase = .established(peer, channel)
        let metrics = ChannelMetrics(
            factory: transport.config.metricsFactory ?? MetricsSystem.factory, node: transport.localID, channel: channel,
            inbound: connection.peer == nil)
        metrics.opened()
        self.metrics = metrics
        connection.outbox.open(context.channel, metrics: metrics)
    }

    /// Handles a frame of an established connection; application messages go to `arrived`.
    private func dispatch(
        _ frame: Frame, from peer: PeerID, channel: ChannelName, context: ChannelHandlerContext,
        into arrived: inout [InboundMessage]
    ) throws {
        if let pending = connection.pending {
            switch frame {
            case .reply(let id, let value): pending.complete(id, .success(value))
            case .replyError(let id, let message): pending.complete(id, .failure(.remoteFailure(message)))
            case .replyRefused(let id): pending.complete(id, .failure(.peerUnreachable(peer, "it is going away and did not handle this")))
            case .goAway: connection.closeAfterQueued(reason: "the peer is going away")
            case .pong: transport.emit(.heartbeatAck(from: peer))
            case .metadata(let value) where channel == .membership:
                transport.emit(.metadataChanged(peer, try Handshake.metadata(from: value)))
            default: throw ConnectionViolation.unexpectedFrame(kind: frame.kindName, channel: channel, inbound: false)
            }
            return
        }
        switch frame {
        case .message(let value) where channel == .membership:
            transport.emit(.membershipMessage(value, from: peer))
        case .bytes where channel == .membership, .request where channel == .membership:
            refuse(frame, on: channel)
        case .message(let value):
            arrived.append(InboundMessage(from: peer, channel: channel, payload: .value(value)))
        case .bytes(let bytes):
            arrived.append(InboundMessage(from: peer, channel: channel, payload: .bytes(bytes)))
        case .request(let id, _) where connection.refusesRequests:
            _ = connection.outbox.enqueue(.never) { FrameCodec.writeReplyRefused(id: id, into: &$0) }
        case .request(let id, let value):
            let message = InboundMessage(from: peer, channel: channel, payload: .value(value))
            transport.onRequest(message, Responder(connection: connection, id: id))
        case .ping:
            _ = connection.outbox.enqueue(.never) { FrameCodec.writeEmpty(.pong, into: &$0) }
        default:
            throw ConnectionViolation.unexpectedFrame(kind: frame.kindName, channel: channel, inbound: true)
        }
    }

    /// Drops a frame its channel does not carry, failing it back to the sender if it is a
    /// request; the connection stays up. Logs the first such frame at error level.
    private func refuse(_ frame: Frame, on channel: ChannelName) {
        let violation = ConnectionViolation.frameNotAllowedOnChannel(kind: frame.kindName, channel: channel)
        if case .request(let id, _) = frame { Responder(connection: connection, id: id).fail("\(violation)") }
        if reportedRefusedFrame {
            logger.debug("\(violation)")
        } else {
            reportedRefusedFrame = true
            logger.error("\(violation) (further ones on this connection are logged at debug level)")
        }
    }

    private func writeHandshake(_ context: ChannelHandlerContext, _ kind: FrameKind, _ value: Value) {
        var buffer = context.channel.allocator.buffer(capacity: 256)
        FrameCodec.writeValue(kind, value, into: &buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func fail(_ context: ChannelHandlerContext, _ reason: String) {
        let unauthenticated: Bool
        switch phase {
        case .closing: return
        case .awaitingHello: unauthenticated = true
        default: unauthenticated = false
        }
        phase = .closing
        failureReason = reason
        handshakeTimeout?.cancel()
        frameTimer?.cancel()
        if unauthenticated, let gate {
            // Anyone can open connections: at most one line per interval about them.
            if let unlogged = gate.shouldReport() {
                let more = unlogged > 0 ? " (and \(unlogged) more since the last such line)" : ""
                logger.warning("closing unauthenticated connection: \(reason)\(more)")
            } else {
                logger.debug("closing unauthenticated connection: \(reason)")
            }
        } else {
            logger.warning("closing connection: \(reason)")
        }
        context.close(promise: nil)
    }
}
