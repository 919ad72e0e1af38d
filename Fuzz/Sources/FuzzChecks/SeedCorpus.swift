import NIOCore
import TrellisWire

@testable import TrellisTransport

/// The inputs the fuzzers start from: valid encodings of every kind, the encodings the
/// encoder never writes but the decoder accepts, and near misses the decoders must refuse.
enum SeedCorpus {
    static func inputs(for target: FuzzTarget) -> [[UInt8]] {
        switch target {
        case .value: values()
        case .frame: frames()
        case .handshake: handshakes()
        }
    }

    static func values() -> [[UInt8]] {
        sampleValues.map { MessagePack.encode($0) } + handWritten
    }

    /// Values of every type and size class, and containers of them.
    static var sampleValues: [Value] {
        let ints: [Int64] = [
            0, 1, 127, 128, 255, 256, 65535, 65536, 0xffff_ffff, 0x1_0000_0000, .max,
            -1, -32, -33, -128, -129, -32768, -32769, Int64(Int32.min), Int64(Int32.min) - 1, .min,
        ]
        let floats: [Double] = [0, -0.0, 1.5, -2.25e300, .infinity, -.infinity, .nan, .leastNonzeroMagnitude]
        let strings = [
            "", "a", String(repeating: "x", count: 31), String(repeating: "y", count: 32),
            String(repeating: "z", count: 300), "é", "e\u{301}", "日本語", "🙂",
        ]
        let bytes: [[UInt8]] = [[], [0], [0xff, 0xfe], [UInt8](repeating: 7, count: 300)]
        let scalars: [Value] = [.nil, false, true] + ints.map(Value.int) + floats.map(Value.float)
            + strings.map(Value.string) + bytes.map(Value.bytes)
        let mixedKeys: [Value.MapEntry] = [
            .init(-5, "negative"), .init(7, 1.5), .init("é", [1, 2]), .init(.bytes([0xff]), .nil),
        ]
        let wide = Value.map((0..<17).map { Value.MapEntry(.int(Int64($0)), .int(Int64($0))) })
        var deep: Value = 0
        for _ in 0..<DecodingLimits.default.maxDepth { deep = [deep] }
        return scalars + [
            [], Value.array(Array(scalars.prefix(16))), Value.array(Array(repeating: 0, count: 20)),
            .map([]), .map(["a": 1, "b": [1, 2], "c": .map(["d": nil])]), .map(mixedKeys), wide, deep,
            [.map(["k": [.map([:]), "v", .bytes([1, 2])]]), [[[1], [2, [3]]]]],
        ]
    }

    /// Encodings the encoder never writes, then ones the decoder must refuse.
    static var handWritten: [[UInt8]] {
        [
            // Integers and sizes in wider forms than needed, float32.
            [0xcc, 0x05], [0xcd, 0x00, 0x05], [0xce, 0, 0, 0, 5], [0xcf, 0, 0, 0, 0, 0, 0, 0, 5],
            [0xd0, 0x05], [0xd1, 0xff, 0xfb], [0xd2, 0xff, 0xff, 0xff, 0xfb], [0xd3, 0, 0, 0, 0, 0, 0, 0, 5],
            [0xca, 0x3f, 0xc0, 0, 0], [0xca, 0x7f, 0x80, 0, 1],
            [0xd9, 1, 0x61], [0xda, 0, 1, 0x61], [0xdb, 0, 0, 0, 1, 0x61], [0xa2, 0xc3, 0x28],
            [0xc4, 1, 0], [0xc5, 0, 1, 0], [0xc6, 0, 0, 0, 1, 0],
            [0xdc, 0, 1, 0xc0], [0xdd, 0, 0, 0, 1, 0xc0], [0xde, 0, 1, 0xa1, 0x61, 1], [0xdf, 0, 0, 0, 1, 0xa1, 0x61, 1],
            // Maps out of canonical order; str and bin spelling one key; "é" precomposed and not.
            [0x82, 0xa1, 0x62, 1, 0xa1, 0x61, 2], [0x82, 0x05, 1, 0x01, 2],
            [0x82, 0xa1, 0x61, 1, 0xc4, 1, 0x61, 2], [0x82, 0xc4, 1, 0x61, 1, 0xa1, 0x61, 2],
            [0x82, 0xa3, 0x65, 0xcc, 0x81, 1, 0xa2, 0xc3, 0xa9, 2], [0x82, 0xa2, 0xc3, 0xa9, 1, 0xa3, 0x65, 0xcc, 0x81, 2],
            // Refused: 0xc1, extensions, a repeated key, a float key, uint64 over Int64.max,
            // truncation, counts beyond the input, trailing bytes, nesting past the limit.
            [0xc1], [0xd4, 0, 0], [0xc7, 1, 0, 0], [0x82, 0xa1, 0x61, 1, 0xa1, 0x61, 2],
            [0x81, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 1], [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            [0x92, 1], [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0], [0xdb, 0, 1, 0, 0, 0x61],
            [0xc0, 0xc0], [UInt8](repeating: 0x91, count: DecodingLimits.default.maxDepth) + [0x90],
        ]
    }

    /// Streams of frames of every kind, alone and together, and broken ones.
    static func frames() -> [[UInt8]] {
        let value: Value = ["msg", 1, .map(["k": true])]
        let bodies: [[UInt8]] = [
            body { FrameCodec.writeValue(.challenge, Handshake.challenge(nonce: HandshakeProperties.acceptorNonce), into: &$0) },
            body { FrameCodec.writeValue(.hello, validHello(), into: &$0) },
            body { FrameCodec.writeValue(.welcome, validWelcome(), into: &$0) },
            body { FrameCodec.writeValue(.reject, Handshake.reject(Handshake.Failure.wrongCookie), into: &$0) },
            body { FrameCodec.writeEmpty(.ping, into: &$0) },
            body { FrameCodec.writeEmpty(.pong, into: &$0) },
            body { FrameCodec.writeValue(.metadata, Handshake.metadataValue(HandshakeProperties.acceptorMetadata), into: &$0) },
            body { FrameCodec.writeValue(.message, value, into: &$0) },
            body { FrameCodec.writeBytes([1, 2, 3], into: &$0) },
            body { FrameCodec.writeBytes([UInt8](), into: &$0) },
            body { FrameCodec.writeRequest(id: 7, value, into: &$0) },
            body { FrameCodec.writeReply(id: .max, value, into: &$0) },
            body { FrameCodec.writeReplyError(id: 1, "no handler", into: &$0) },
        ]
        let largest = frame(body { FrameCodec.writeBytes([UInt8](repeating: 0xab, count: FrameProperties.maxFrameSize - 1), into: &$0) })
        let broken: [[UInt8]] = [
            [0, 0, 0, 0], [0, 0, 0, 2, 0x7f, 0], [0, 0, 0, 2, FrameKind.ping.rawValue, 0],
            [0, 0, 0, 3, FrameKind.request.rawValue, 0, 0], [0, 0, 2, 1, 0x21], [0xff, 0xff, 0xff, 0xff], [0, 0],
        ]
        let all = bodies.flatMap(frame)
        return bodies.map(frame) + [all, Array(all.dropLast()), largest] + broken
    }

    /// Handshake messages: valid ones signed with the fuzz cookie, and near misses.
    static func handshakes() -> [[UInt8]] {
        let foreign = Handshake.Transcript(
            cluster: "other", channel: "default", connectorID: "n3@127.0.0.1:7003", connectorMetadata: .nil,
            acceptorNonce: HandshakeProperties.acceptorNonce, connectorNonce: [])
        let messages: [Value] = [
            Handshake.challenge(nonce: HandshakeProperties.acceptorNonce),
            .map(["v": 2, "nonce": .bytes(HandshakeProperties.acceptorNonce)]),
            validHello(),
            validHello(id: "n2@[::1]:7002", channel: "default#2", metadata: PeerMetadata(tags: ["zone": "b", "rack": "7"], capabilities: ["lua", "kv"])),
            Handshake.hello(foreign, key: HandshakeProperties.key),
            validWelcome(),
            Handshake.welcome(
                HandshakeProperties.connectorTranscript, acceptorID: PeerID(name: "someone", host: "::1", port: 1),
                metadata: .nil, key: HandshakeProperties.key),
            Handshake.reject(Handshake.Failure.wrongCookie),
            Handshake.metadataValue(HandshakeProperties.acceptorMetadata),
        ]
        return messages.map { MessagePack.encode($0) }
    }

    /// A hello the fuzz acceptor accepts.
    private static func validHello(
        id: String = "n1@127.0.0.1:7001", channel: String = "default", metadata: PeerMetadata = PeerMetadata(tags: ["zone": "a"])
    ) -> Value {
        let transcript = Handshake.Transcript(
            cluster: HandshakeProperties.cluster, channel: channel, connectorID: id,
            connectorMetadata: Handshake.metadataValue(metadata), acceptorNonce: HandshakeProperties.acceptorNonce,
            connectorNonce: (0..<UInt8(Handshake.nonceSize)).map { $0 })
        return Handshake.hello(transcript, key: HandshakeProperties.key)
    }

    /// A welcome the fuzz connector accepts.
    private static func validWelcome() -> Value {
        Handshake.welcome(
            HandshakeProperties.connectorTranscript, acceptorID: HandshakeProperties.acceptor,
            metadata: Handshake.metadataValue(HandshakeProperties.acceptorMetadata), key: HandshakeProperties.key)
    }

    private static func body(_ write: (inout ByteBuffer) -> Void) -> [UInt8] {
        var buffer = ByteBuffer()
        write(&buffer)
        return Array(buffer.readableBytesView)
    }

    private static func frame(_ body: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        Framing.writeFrame(ByteBuffer(bytes: body), into: &buffer)
        return Array(buffer.readableBytesView)
    }
}
