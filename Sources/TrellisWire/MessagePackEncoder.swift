import NIOCore

/// The MessagePack encoding of `Value` (https://msgpack.org/): compact, and readable by tools
/// in any language. Integers use the smallest representation, floats are always float64,
/// `.string` is `str` and `.bytes` is `bin`; maps are written in canonical key order.
public enum MessagePack {
    /// Appends the encoding of `value` to `buffer`.
    public static func encode(_ value: Value, into buffer: inout ByteBuffer) {
        switch value {
        case .nil:
            buffer.writeInteger(UInt8(0xc0))
        case .bool(let b):
            buffer.writeInteger(UInt8(b ? 0xc3 : 0xc2))
        case .int(let i):
            encodeInt(i, into: &buffer)
        case .float(let d):
            buffer.writeInteger(UInt8(0xcb))
            buffer.writeInteger(d.bitPattern)
        case .string(let s):
            let count = s.utf8.count
            writeHeader(count, fix: 0xa0, fixMax: 31, b8: 0xd9, b16: 0xda, b32: 0xdb, into: &buffer)
            buffer.writeString(s)
        case .bytes(let b):
            writeHeader(b.count, fix: nil, fixMax: 0, b8: 0xc4, b16: 0xc5, b32: 0xc6, into: &buffer)
            buffer.writeBytes(b)
        case .array(let elements):
            writeHeader(elements.count, fix: 0x90, fixMax: 15, b8: nil, b16: 0xdc, b32: 0xdd, into: &buffer)
            for element in elements { encode(element, into: &buffer) }
        case .map(let entries):
            writeHeader(entries.count, fix: 0x80, fixMax: 15, b8: nil, b16: 0xde, b32: 0xdf, into: &buffer)
            for entry in entries {
                encode(entry.key, into: &buffer)
                encode(entry.value, into: &buffer)
            }
        }
    }

    /// The encoding of `value` as bytes.
    public static func encode(_ value: Value) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        encode(value, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }

    private static func encodeInt(_ i: Int64, into buffer: inout ByteBuffer) {
        switch i {
        case 0...0x7f:
            buffer.writeInteger(UInt8(i))
        case -32..<0:
            buffer.writeInteger(Int8(i))
        case 0x80...0xff:
            buffer.writeInteger(UInt8(0xcc))
            buffer.writeInteger(UInt8(i))
        case 0x100...0xffff:
            buffer.writeInteger(UInt8(0xcd))
            buffer.writeInteger(UInt16(i))
        case 0x10000...0xffff_ffff:
            buffer.writeInteger(UInt8(0xce))
            buffer.writeInteger(UInt32(i))
        case Int64(Int8.min)..<0:
            buffer.writeInteger(UInt8(0xd0))
            buffer.writeInteger(Int8(i))
        case Int64(Int16.min)..<0:
            buffer.writeInteger(UInt8(0xd1))
            buffer.writeInteger(Int16(i))
        case Int64(Int32.min)..<0:
            buffer.writeInteger(UInt8(0xd2))
            buffer.writeInteger(Int32(i))
        default:
            buffer.writeInteger(UInt8(0xd3))
            buffer.writeInteger(i)
        }
    }

    private static func writeHeader(
        _ count: Int, fix: UInt8?, fixMax: Int, b8: UInt8?, b16: UInt8, b32: UInt8, into buffer: inout ByteBuffer
    ) {
        if let fix, count <= fixMax {
            buffer.writeInteger(fix | UInt8(count))
        } else if let b8, count <= 0xff {
            buffer.writeInteger(b8)
            buffer.writeInteger(UInt8(count))
        } else if count <= 0xffff {
            buffer.writeInteger(b16)
            buffer.writeInteger(UInt16(count))
        } else {
            buffer.writeInteger(b32)
            buffer.writeInteger(UInt32(truncatingIfNeeded: count))
        }
    }
}
