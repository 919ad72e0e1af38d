import Crypto
import NIOCore
import TrellisWire

@testable import TrellisTransport

// The properties the libFuzzer targets in Fuzz/ check on every input; FuzzCorpusTests replays
// the committed corpus through them. Fuzz/Package.swift compiles this file too (symlinked
// into its FuzzChecks target), so the fuzzers and the test check exactly the same properties.

/// A property of a wire decoder that a fuzz input broke.
struct FuzzViolation: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}

/// The fuzz targets: each feeds arbitrary bytes to one decoder and checks its properties.
enum FuzzTarget: String, Sendable {
    /// `MessagePack.decode`, on the bytes as one value.
    case value
    /// `FrameReader` and `FrameCodec.decode`, on the bytes as a connection's inbound stream.
    case frame
    /// The handshake parsers, on the bytes as one MessagePack-encoded handshake message.
    case handshake

    /// Checks `input`, throwing the first property it breaks.
    func check(_ input: [UInt8]) throws(FuzzViolation) {
        switch self {
        case .value: try ValueProperties.check(input)
        case .frame: try FrameProperties.check(input)
        case .handshake: try HandshakeProperties.check(input)
        }
    }
}

/// Properties of the MessagePack value decoder.
enum ValueProperties {
    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let whole = decode(input)
        // The ByteBuffer entry point agrees, on a buffer whose readable bytes start past index 0.
        var shifted = ByteBuffer(bytes: [0xc1, 0xc1] + input)
        shifted.moveReaderIndex(forwardBy: 2)
        let fromBuffer = Result { () throws(WireError) in try MessagePack.decode(&shifted) }
        try require(same(whole, fromBuffer), "decode(&buffer) gave \(fromBuffer), decode(bytes) gave \(whole)")
        // decodePrefix reads the same value and leaves exactly the bytes decode calls trailing.
        var rest = ByteBuffer(bytes: input)
        let prefix = Result { () throws(WireError) in try MessagePack.decodePrefix(&rest) }
        switch (whole, prefix) {
        case let (.success(value), .success(first)):
            try require(identical(value, first) && rest.readableBytes == 0, "decodePrefix disagrees with decode")
        case let (.failure(.trailingBytes(count)), .success):
            try require(count > 0 && rest.readableBytes == count, "trailingBytes(\(count)), decodePrefix left \(rest.readableBytes)")
        case let (.failure(error), .failure(prefixError)):
            try require(error == prefixError, "decodePrefix threw \(prefixError), decode threw \(error)")
        default:
            throw FuzzViolation("decodePrefix gave \(prefix), decode gave \(whole)")
        }
        switch whole {
        case .success(let value): try checkDecoded(value, from: input)
        case .failure(.truncated(let needed)): try require(needed > 0, "truncated(needed: \(needed))")
        case .failure: break
        }
    }

    /// Checks a value the decoder made of `encoding`: canonical, bounded by the input's size,
    /// re-encoded to a fixed point, independent of map entry order, and within the depth limit
    /// exactly when that limit accepts it.
    static func checkDecoded(_ value: Value, from encoding: [UInt8]) throws(FuzzViolation) {
        try checkCanonical(value)
        let shape = Shape(value)
        try require(shape.nodes <= encoding.count, "\(shape.nodes) values decoded from \(encoding.count) bytes")
        try require(shape.depth <= DecodingLimits.default.maxDepth, "nesting of \(shape.depth) passed the depth limit")
        let canonical = MessagePack.encode(value)
        guard case .success(let again) = decode(canonical), identical(again, value) else {
            throw FuzzViolation("the re-encoded value \(value) does not decode to itself")
        }
        try require(MessagePack.encode(again) == canonical, "re-encoding \(value) is not a fixed point")
        let reordered = decode(MessagePack.encode(reversingMaps(value)))
        try require(same(reordered, .success(value)), "reversing map entries on the wire gave \(reordered), not \(value)")
        if shape.depth > 0 {
            try require(same(decode(encoding, maxDepth: shape.depth), .success(value)), "maxDepth \(shape.depth) refused nesting \(shape.depth)")
            let tooDeep = decode(encoding, maxDepth: shape.depth - 1)
            try require(same(tooDeep, .failure(.tooDeep(limit: shape.depth - 1))), "maxDepth \(shape.depth - 1) gave \(tooDeep)")
        }
    }

    /// Map keys are integers, strings or byte strings, in canonical order, none twice.
    private static func checkCanonical(_ value: Value) throws(FuzzViolation) {
        switch value {
        case .array(let elements):
            for element in elements { try checkCanonical(element) }
        case .map(let entries):
            for (index, entry) in entries.enumerated() {
                switch entry.key {
                case .int, .string, .bytes: break
                default: throw FuzzViolation("map key \(entry.key) decoded")
                }
                if index > 0 {
                    let previous = entries[index - 1]
                    try require(
                        !Value.canonicalKeyOrder(entry, previous) && !identical(previous.key, entry.key),
                        "map keys \(previous.key), \(entry.key) out of canonical order or repeated")
                }
                try checkCanonical(entry.value)
            }
        default:
            break
        }
    }
}

/// Properties of the frame decoder: `FrameReader` splitting a stream as `ConnectionHandler`
/// does, and `FrameCodec.decode` on each frame's body.
enum FrameProperties {
    /// The reader's limit: small, so that short inputs reach it.
    static let maxFrameSize = 512

    /// What reading a stream gave: its frames, then the bytes left waiting or the error.
    struct Reading: Equatable {
        var frames: [[UInt8]] = []
        var waiting = 0
        var error: WireError?
    }

    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        let reading = read(input, chunks: [input.count])
        try require(read(input, chunks: [1, 2, 5, 64]) == reading, "reading in pieces differs from reading at once")
        var offset = 0
        for frame in reading.frames {
            try require(frame.count <= maxFrameSize, "a frame of \(frame.count) bytes passed the limit of \(maxFrameSize)")
            try require(offset + 4 + frame.count <= input.count, "a frame longer than the input")
            try require(Array(input[offset..<offset + 4 + frame.count]) == framed(frame), "a frame is not the input's bytes")
            offset += 4 + frame.count
            try checkBody(frame)
        }
        let left = input.count - offset
        let declared = left >= 4 ? Int(input[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }) : nil
        switch reading.error {
        case nil:
            let incomplete = declared.map { $0 <= maxFrameSize && $0 > left - 4 } ?? true
            try require(reading.waiting == left && incomplete, "stopped with \(left) byte(s) left, a frame of \(declared ?? 0) declared")
        case .frameTooLarge(let length, let limit)?:
            try require(limit == maxFrameSize && length > limit && declared == length, "frameTooLarge(\(length), \(limit)) for a prefix of \(declared ?? 0)")
        case let error?:
            throw FuzzViolation("FrameReader threw \(error)")
        }
    }

    /// Reads `input` arriving in chunks of the given sizes (cycled), keeping what is left of
    /// each read for the next as `ConnectionHandler` does, and stopping at the first error.
    static func read(_ input: [UInt8], chunks: [Int]) -> Reading {
        let reader = FrameReader(maxFrameSize: maxFrameSize)
        var reading = Reading()
        var cumulation: ByteBuffer?
        var start = 0
        for size in Array(repeating: chunks, count: input.count).joined() where start < input.count {
            let end = min(input.count, start + max(1, size))
            var buffer = ByteBuffer(bytes: input[start..<end])
            start = end
            if var buffered = cumulation.take() {
                buffered.writeBuffer(&buffer)
                buffer = buffered
            }
            do {
                while let frame = try reader.nextFrame(&buffer) { reading.frames.append(Array(frame.readableBytesView)) }
            } catch {
                reading.error = error
                return reading
            }
            if buffer.readableBytes > 0 { cumulation = buffer }
        }
        reading.waiting = cumulation?.readableBytes ?? 0
        return reading
    }

    /// Checks one frame body: it decodes or is refused for the right reason, and a decoded
    /// frame written back by `FrameCodec` decodes to the same frame.
    static func checkBody(_ payload: [UInt8]) throws(FuzzViolation) {
        var body = ByteBuffer(bytes: payload)
        let frame: Frame
        switch Result(catching: { () throws(WireError) in try FrameCodec.decode(&body) }) {
        case .success(let decoded):
            frame = decoded
        case .failure(.malformedMessage):
            return try require(payload.isEmpty, "a non-empty body refused as malformed")
        case .failure(.unknownMessageKind(let kind)):
            return try require(payload.first == kind && FrameKind(rawValue: kind) == nil, "kind \(kind) refused")
        case .failure:
            return
        }
        let parts = FrameParts(frame)
        try require(payload.first == parts.kind.rawValue, "a \(parts.kind) frame from a body of kind \(payload.first ?? 0)")
        let written = try FrameParts.body(of: frame)
        var again = ByteBuffer(bytes: written)
        guard let reread = try? FrameCodec.decode(&again), FrameParts(reread).matches(parts) else {
            throw FuzzViolation("a \(parts.kind) frame written back does not decode to itself")
        }
        try require(try FrameParts.body(of: reread) == written, "writing a \(parts.kind) frame is not a fixed point")
        if case .bytes = frame { try require(written == payload, "a bytes frame changed on the way through") }
        if let value = parts.value {
            try ValueProperties.checkDecoded(value, from: Array(payload.dropFirst(parts.id == nil ? 1 : 9)))
        }
    }

    /// `payload` with its length prefix, as `Framing` writes it.
    private static func framed(_ payload: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        Framing.writeFrame(ByteBuffer(bytes: payload), into: &buffer)
        return Array(buffer.readableBytesView)
    }
}

/// A decoded frame's parts, comparable (`Frame` is not `Equatable`).
struct FrameParts {
    var kind: FrameKind
    var id: UInt64?
    var value: Value?
    /// A bytes frame's payload, or a replyError's text.
    var raw: [UInt8]?

    init(_ frame: Frame) {
        switch frame {
        case .challenge(let payload): (kind, value) = (.challenge, payload)
        case .hello(let payload): (kind, value) = (.hello, payload)
        case .welcome(let payload): (kind, value) = (.welcome, payload)
        case .reject(let payload): (kind, value) = (.reject, payload)
        case .metadata(let payload): (kind, value) = (.metadata, payload)
        case .message(let payload): (kind, value) = (.message, payload)
        case .ping: kind = .ping
        case .pong: kind = .pong
        case .goAway: kind = .goAway
        case .bytes(let bytes): (kind, raw) = (.bytes, Array(bytes.readableBytesView))
        case .request(let requestID, let payload): (kind, id, value) = (.request, requestID, payload)
        case .reply(let requestID, let payload): (kind, id, value) = (.reply, requestID, payload)
        case .replyError(let requestID, let text): (kind, id, raw) = (.replyError, requestID, Array(text.utf8))
        case .replyRefused(let requestID): (kind, id) = (.replyRefused, requestID)
        }
    }

    /// The same kind, id, payload and (identical) value.
    func matches(_ other: FrameParts) -> Bool {
        guard kind == other.kind, id == other.id, raw == other.raw else { return false }
        switch (value, other.value) {
        case (nil, nil): return true
        case let (mine?, theirs?): return identical(mine, theirs)
        default: return false
        }
    }

    /// The body `FrameCodec` writes for `frame`, after its length prefix (which must count
    /// exactly that body).
    static func body(of frame: Frame) throws(FuzzViolation) -> [UInt8] {
        var buffer = ByteBuffer()
        switch frame {
        case .challenge(let value): FrameCodec.writeValue(.challenge, value, into: &buffer)
        case .hello(let value): FrameCodec.writeValue(.hello, value, into: &buffer)
        case .welcome(let value): FrameCodec.writeValue(.welcome, value, into: &buffer)
        case .reject(let value): FrameCodec.writeValue(.reject, value, into: &buffer)
        case .metadata(let value): FrameCodec.writeValue(.metadata, value, into: &buffer)
        case .message(let value): FrameCodec.writeValue(.message, value, into: &buffer)
        case .ping: FrameCodec.writeEmpty(.ping, into: &buffer)
        case .pong: FrameCodec.writeEmpty(.pong, into: &buffer)
        case .goAway: FrameCodec.writeEmpty(.goAway, into: &buffer)
        case .bytes(let bytes): FrameCodec.writeBytes(bytes, into: &buffer)
        case .request(let id, let value): FrameCodec.writeRequest(id: id, value, into: &buffer)
        case .reply(let id, let value): FrameCodec.writeReply(id: id, value, into: &buffer)
        case .replyError(let id, let text): FrameCodec.writeReplyError(id: id, text, into: &buffer)
        case .replyRefused(let id): FrameCodec.writeReplyRefused(id: id, into: &buffer)
        }
        let length = buffer.readInteger(as: UInt32.self)
        try require(length.map(Int.init) == buffer.readableBytes, "a \(FrameParts(frame).kind) frame's prefix \(length.map(String.init) ?? "missing") for a body of \(buffer.readableBytes) bytes")
        return Array(buffer.readableBytesView)
    }
}

/// Throws `message` unless `condition` holds.
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    guard condition else { throw FuzzViolation(message()) }
}

/// Decodes `bytes` with the default limits but for `maxDepth`.
func decode(_ bytes: [UInt8], maxDepth: Int = DecodingLimits.default.maxDepth) -> Result<Value, WireError> {
    Result { () throws(WireError) in try MessagePack.decode(bytes, limits: DecodingLimits(maxDepth: maxDepth)) }
}

/// Both decoded to identical values, or both failed with the same error.
func same(_ lhs: Result<Value, WireError>, _ rhs: Result<Value, WireError>) -> Bool {
    switch (lhs, rhs) {
    case let (.success(left), .success(right)): return identical(left, right)
    case let (.failure(left), .failure(right)): return left == right
    default: return false
    }
}

/// Structural identity: `==`, except that floats compare by bit pattern (NaN, -0.0) and strings
/// by their UTF-8 bytes rather than by Unicode canonical equivalence.
func identical(_ lhs: Value, _ rhs: Value) -> Bool {
    switch (lhs, rhs) {
    case (.nil, .nil): return true
    case let (.bool(left), .bool(right)): return left == right
    case let (.int(left), .int(right)): return left == right
    case let (.float(left), .float(right)): return left.bitPattern == right.bitPattern
    case let (.string(left), .string(right)): return left.utf8.elementsEqual(right.utf8)
    case let (.bytes(left), .bytes(right)): return left == right
    case let (.array(left), .array(right)):
        return left.count == right.count && zip(left, right).allSatisfy { identical($0, $1) }
    case let (.map(left), .map(right)):
        return left.count == right.count && zip(left, right).allSatisfy { identical($0.key, $1.key) && identical($0.value, $1.value) }
    default: return false
    }
}

/// `value` with the entries of every map in it reversed.
private func reversingMaps(_ value: Value) -> Value {
    switch value {
    case .array(let elements): return .array(elements.map(reversingMaps))
    case .map(let entries): return .map(entries.reversed().map { Value.MapEntry($0.key, reversingMaps($0.value)) })
    default: return value
    }
}

/// How many values a value holds (itself included), and how deeply its arrays and maps nest.
private struct Shape {
    var nodes = 1
    var depth = 0

    init(_ value: Value) {
        let children: [Value]
        switch value {
        case .array(let elements): children = elements
        case .map(let entries): children = entries.flatMap { [$0.key, $0.value] }
        default: return
        }
        for child in children {
            let shape = Shape(child)
            nodes += shape.nodes
            depth = max(depth, shape.depth)
        }
        depth += 1
    }
}
