import NIOCore
import TrellisWire

/// The first byte of every frame's payload: what the rest of the frame holds.
enum FrameKind: UInt8 {
    case challenge = 0x01
    case hello = 0x02
    case welcome = 0x03
    case reject = 0x04
    case ping = 0x10
    case pong = 0x11
    case metadata = 0x12
    /// Sent by a node shutting down gracefully on the connections its peers dialed: send no
    /// more requests on this connection; the ones already on their way are refused.
    case goAway = 0x13
    case message = 0x20
    case bytes = 0x21
    case request = 0x22
    case reply = 0x23
    case replyError = 0x24
    /// The answer to a request that arrived after `goAway`: it was not handled.
    case replyRefused = 0x25
}

/// One decoded frame.
enum Frame {
    case challenge(Value)
    case hello(Value)
    case welcome(Value)
    case reject(Value)
    case ping
    case pong
    case metadata(Value)
    case goAway
    case message(Value)
    case bytes(ByteBuffer)
    case request(id: UInt64, Value)
    case reply(id: UInt64, Value)
    case replyError(id: UInt64, String)
    case replyRefused(id: UInt64)
}

/// Writes whole frames (length prefix, kind byte, payload) in place, and decodes frame bodies.
///
/// A message is encoded straight into a connection's outbox: the writers measure it first
/// and then write prefix and body in one pass, without a temporary buffer.
enum FrameCodec {
    static func writeValue(_ kind: FrameKind, _ value: Value, into buffer: inout ByteBuffer) {
        MessagePack.encodeFrame(kind: kind.rawValue, value, into: &buffer)
    }

    static func writeEncoded(_ kind: FrameKind, _ value: EncodedValue, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { body in
            body.writeInteger(kind.rawValue)
            body.writeBytes(value.bytes)
        }
    }

    static func writeEmpty(_ kind: FrameKind, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { $0.writeInteger(kind.rawValue) }
    }

    static func writeBytes(_ bytes: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { body in
            body.writeInteger(FrameKind.bytes.rawValue)
            body.writeBytes(bytes)
        }
    }

    static func writeBytes(_ bytes: ByteBuffer, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { body in
            body.writeInteger(FrameKind.bytes.rawValue)
            body.writeImmutableBuffer(bytes)
        }
    }

    static func writeRequest(id: UInt64, _ value: Value, into buffer: inout ByteBuffer) {
        MessagePack.encodeFrame(kind: FrameKind.request.rawValue, id: id, value, into: &buffer)
    }

    static func writeReply(id: UInt64, _ value: Value, into buffer: inout ByteBuffer) {
        MessagePack.encodeFrame(kind: FrameKind.reply.rawValue, id: id, value, into: &buffer)
    }

    static func writeReplyError(id: UInt64, _ message: String, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { body in
            body.writeInteger(FrameKind.replyError.rawValue)
            body.writeInteger(id)
            body.writeString(message)
        }
    }

    static func writeReplyRefused(id: UInt64, into buffer: inout ByteBuffer) {
        Framing.writeFrame(into: &buffer) { body in
            body.writeInteger(FrameKind.replyRefused.rawValue)
            body.writeInteger(id)
        }
    }

    /// Decodes one frame's payload (everything after the length prefix).
    static func decode(_ body: inout ByteBuffer) throws(WireError) -> Frame {
        guard let byte = body.readInteger(as: UInt8.self) else { throw .malformedMessage("empty frame") }
        guard let kind = FrameKind(rawValue: byte) else { throw .unknownMessageKind(byte) }
        switch kind {
        case .challenge: return .challenge(try MessagePack.decode(&body))
        case .hello: return .hello(try MessagePack.decode(&body))
        case .welcome: return .welcome(try MessagePack.decode(&body))
        case .reject: return .reject(try MessagePack.decode(&body))
        case .ping: return try empty(&body, .ping)
        case .pong: return try empty(&body, .pong)
        case .metadata: return .metadata(try MessagePack.decode(&body))
        case .goAway: return try empty(&body, .goAway)
        case .message: return .message(try MessagePack.decode(&body))
        case .bytes: return .bytes(body)
        case .request: return .request(id: try readID(&body), try MessagePack.decode(&body))
        case .reply: return .reply(id: try readID(&body), try MessagePack.decode(&body))
        case .replyError:
            let id = try readID(&body)
            return .replyError(id: id, body.readString(length: body.readableBytes) ?? "")
        case .replyRefused:
            let id = try readID(&body)
            return try empty(&body, .replyRefused(id: id))
        }
    }

    private static func empty(_ body: inout ByteBuffer, _ frame: Frame) throws(WireError) -> Frame {
        guard body.readableBytes == 0 else { throw .trailingBytes(body.readableBytes) }
        return frame
    }

    private static func readID(_ body: inout ByteBuffer) throws(WireError) -> UInt64 {
        guard let id = body.readInteger(as: UInt64.self) else { throw .truncated(needed: 8 - body.readableBytes) }
        return id
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
        case .goAway: return "go-away"
        case .message: return "message"
        case .bytes: return "bytes"
        case .request: return "request"
        case .reply: return "reply"
        case .replyError: return "reply-error"
        case .replyRefused: return "reply-refused"
        }
    }
}
