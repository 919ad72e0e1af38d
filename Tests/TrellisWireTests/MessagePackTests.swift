import NIOCore
import XCTest

@testable import TrellisWire

final class MessagePackTests: XCTestCase {
    func testEncodingsMatchTheMessagePackSpec() {
        XCTAssertEqual(MessagePack.encode(.nil), [0xc0])
        XCTAssertEqual(MessagePack.encode(true), [0xc3])
        XCTAssertEqual(MessagePack.encode(5), [0x05])
        XCTAssertEqual(MessagePack.encode(-1), [0xff])
        XCTAssertEqual(MessagePack.encode(200), [0xcc, 200])
        XCTAssertEqual(MessagePack.encode(-200), [0xd1, 0xff, 0x38])
        XCTAssertEqual(MessagePack.encode(.int(.min)), [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(MessagePack.encode("hi"), [0xa2, 0x68, 0x69])
        XCTAssertEqual(MessagePack.encode(.bytes([1, 2])), [0xc4, 2, 1, 2])
        XCTAssertEqual(MessagePack.encode([1, 2]), [0x92, 1, 2])
        XCTAssertEqual(MessagePack.encode(.map(["a": 1])), [0x81, 0xa1, 0x61, 1])
        XCTAssertEqual(MessagePack.encode(1.5), [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0])
    }

    func testDecodesForeignEncodings() throws {
        XCTAssertEqual(try MessagePack.decode([0xca, 0x3f, 0xc0, 0, 0]), .float(1.5))
        XCTAssertEqual(try MessagePack.decode([0xcf, 0, 0, 0, 0, 0, 0, 1, 0]), .int(256))
        XCTAssertEqual(try MessagePack.decode([0xd9, 1, 0x78]), .string("x"))
        XCTAssertEqual(try MessagePack.decode([0xa1, 0xff]), .bytes([0xff]), "invalid UTF-8 in a str stays bytes")
        // Map keys out of canonical order are put in order.
        XCTAssertEqual(try MessagePack.decode([0x82, 0xa1, 0x62, 2, 0xa1, 0x61, 1]), .map(["a": 1, "b": 2]))
    }

    func testRejectsWhatTheModelDoesNotHave() {
        XCTAssertThrowsError(try MessagePack.decode([0xc1])) { XCTAssertEqual($0 as? WireError, .unsupportedType(0xc1)) }
        XCTAssertThrowsError(try MessagePack.decode([0xd4, 1, 1])) { XCTAssertEqual($0 as? WireError, .unsupportedType(0xd4)) }
        XCTAssertThrowsError(try MessagePack.decode([0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0])) {
            XCTAssertEqual($0 as? WireError, .integerOutOfRange)
        }
        XCTAssertThrowsError(try MessagePack.decode([0x81, 0x90, 1])) { XCTAssertEqual($0 as? WireError, .unsupportedMapKey) }
        XCTAssertThrowsError(try MessagePack.decode([0x82, 1, 1, 1, 2])) { XCTAssertEqual($0 as? WireError, .duplicateMapKey) }
        XCTAssertThrowsError(try MessagePack.decode([1, 2])) { XCTAssertEqual($0 as? WireError, .trailingBytes(1)) }
    }

    func testHugeLengthsFailWithoutAllocating() {
        XCTAssertThrowsError(try MessagePack.decode([0xdd, 0xff, 0xff, 0xff, 0xff, 1])) {
            guard case .truncated = $0 as? WireError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try MessagePack.decode([0xdb, 0xff, 0xff, 0xff, 0xff])) {
            guard case .truncated = $0 as? WireError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try MessagePack.decode([0xdf, 0xff, 0xff, 0xff, 0xff, 1, 1])) {
            guard case .truncated = $0 as? WireError else { return XCTFail("\($0)") }
        }
    }

    func testDepthIsLimited() {
        let deep = [UInt8](repeating: 0x91, count: 10_000) + [0xc0]
        XCTAssertThrowsError(try MessagePack.decode(deep)) { XCTAssertEqual($0 as? WireError, .tooDeep(limit: 64)) }
        let ok = [UInt8](repeating: 0x91, count: 64) + [0xc0]
        XCTAssertNoThrow(try MessagePack.decode(ok))
    }

    func testAFrameEncodedInOnePassMatchesOneWrittenInParts() throws {
        let values: [Value] = [.nil, 7, "x", .bytes([UInt8](repeating: 3, count: 300)), .array([.int(1 << 40), "msg"]), .map(["k": .float(1.5)])]
        for value in values {
            for id: UInt64? in [nil, 0x0102_0304_0506_0708] {
                var parts = ByteBuffer(bytes: [9, 9])
                Framing.writeFrame(into: &parts) { body in
                    body.writeInteger(UInt8(0x22))
                    if let id { body.writeInteger(id) }
                    MessagePack.encode(value, into: &body)
                }
                var fused = ByteBuffer(bytes: [9, 9])
                MessagePack.encodeFrame(kind: 0x22, id: id, value, into: &fused)
                XCTAssertEqual(Array(fused.readableBytesView), Array(parts.readableBytesView), "\(value), id \(String(describing: id))")
            }
        }
    }

    func testFramesSplitAStreamAndRefuseOversizedOnes() throws {
        var stream = ByteBufferAllocator().buffer(capacity: 64)
        Framing.writeFrame(into: &stream) { MessagePack.encode("one", into: &$0) }
        Framing.writeFrame(into: &stream) { MessagePack.encode(2, into: &$0) }
        let reader = FrameReader(maxFrameSize: 16)

        var partial = stream.getSlice(at: 0, length: 5)!
        XCTAssertNil(try reader.nextFrame(&partial), "a partial frame waits for more bytes")

        var first = try XCTUnwrap(try reader.nextFrame(&stream))
        XCTAssertEqual(try MessagePack.decode(&first), "one")
        var second = try XCTUnwrap(try reader.nextFrame(&stream))
        XCTAssertEqual(try MessagePack.decode(&second), 2)
        XCTAssertNil(try reader.nextFrame(&stream))

        var oversized = ByteBufferAllocator().buffer(capacity: 8)
        oversized.writeInteger(UInt32(17))
        XCTAssertThrowsError(try reader.nextFrame(&oversized)) {
            XCTAssertEqual($0 as? WireError, .frameTooLarge(length: 17, limit: 16))
        }
    }

    func testStringsAreEqualOnlyWhenTheirBytesAre() throws {
        let (composed, decomposed) = (Value.string("caf\u{E9}"), Value.string("cafe\u{301}"))
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertEqual(Set([composed, decomposed, composed]).count, 2)
        let map = Value.map([Value.MapEntry(decomposed, 1), Value.MapEntry(composed, 2)])
        var buffer = ByteBuffer()
        MessagePack.encode(map, into: &buffer)
        XCTAssertEqual(try MessagePack.decode(&buffer), map, "two keys, in byte order")
    }

    func testPeerIDsParseAndCompareAsStrings() throws {
        let id = try PeerID(parsing: "n1@127.0.0.1:7101")
        XCTAssertEqual(id, PeerID(name: "n1", host: "127.0.0.1", port: 7101))
        XCTAssertEqual(try PeerID(parsing: "a@[::1]:9").host, "::1")
        XCTAssertLessThan(try PeerID(parsing: "n10@h:1"), try PeerID(parsing: "n2@h:1"))
        // Equal as Swift strings, different bytes: different ids, ordered by their bytes.
        let (composed, decomposed) = (PeerID(name: "caf\u{E9}", host: "h", port: 1), PeerID(name: "cafe\u{301}", host: "h", port: 1))
        XCTAssertNotEqual(composed, decomposed)
        XCTAssertLessThan(decomposed, composed)
        XCTAssertEqual(Set([composed, decomposed, composed]).count, 2)
        for bad in ["n1", "@h:1", "n1@h", "n1@:1", "n1@h:99999", "n 1@h:1"] {
            XCTAssertThrowsError(try PeerID(parsing: bad), bad)
        }
        // Ids made from parts are interned unchecked: a parse must not take them for valid.
        for id in [PeerID(name: "made", host: "", port: 1), PeerID(name: "made up", host: "h", port: 1)] {
            XCTAssertThrowsError(try PeerID(parsing: id.description), id.description)
        }
        let bracketed = PeerID(name: "made", host: "[h]", port: 1)
        XCTAssertEqual(try PeerID(parsing: bracketed.description).host, "h")
    }

    func testIdsPastTheInternTableCompareByTheirText() {
        let interned = PeerID(name: "n1", host: "127.0.0.1", port: 7101)
        var own = PeerID.uninterned(name: "n1", host: "127.0.0.1", port: 7101)
        XCTAssertEqual(own, interned)
        XCTAssertEqual(own.hashValue, interned.hashValue)
        XCTAssertEqual(Set([own, interned]).count, 1)
        XCTAssertLessThan(PeerID.uninterned(name: "n0", host: "127.0.0.1", port: 7101), interned)
        XCTAssertFalse(own < interned || interned < own)
        // A copy keeps its storage alive after the original is gone.
        let copies = (1...3).map { PeerID.uninterned(name: "gone", host: "h", port: $0) }
        own = copies[1]
        XCTAssertEqual(own.description, "gone@h:2")
        XCTAssertEqual(own.port, 2)
    }
}
