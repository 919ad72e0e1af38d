import NIOCore

/// The MessagePack encoding of `Value` (https://msgpack.org/): compact, and readable by tools
/// in any language. Integers use the smallest representation, floats are always float64,
/// `.string` is `str` and `.bytes` is `bin`; maps are written in canonical key order.
public enum MessagePack {
    /// Appends the encoding of `value` to `buffer`.
    ///
    /// Measures the encoding first, then writes it into the buffer's memory in one pass: one
    /// capacity check per value, not one per byte group.
    public static func encode(_ value: Value, into buffer: inout ByteBuffer) {
        let size = encodedSize(of: value)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
            var writer = RawWriter(base: memory.baseAddress!)
            writer.write(value)
            assert(writer.offset == size, "encodedSize(of:) disagrees with the encoding")
            return size
        }
    }

    /// Appends a whole frame in one pass: the length prefix, the frame's `kind` byte, the
    /// request `id` when there is one (8 bytes, big-endian), then the encoding of `value`.
    ///
    /// The same bytes as `Framing.writeFrame(into:)` around a kind byte, an id and `encode`,
    /// with one capacity check for the frame instead of one per part: this is how a node
    /// writes every application message, request and reply.
    public static func encodeFrame(kind: UInt8, id: UInt64? = nil, _ value: Value, into buffer: inout ByteBuffer) {
        let headerSize = 1 + (id == nil ? 0 : 8)
        let bodySize = headerSize + encodedSize(of: value)
        let size = Framing.prefixSize + bodySize
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
            var writer = RawWriter(base: memory.baseAddress!)
            writer.integer(UInt32(truncatingIfNeeded: bodySize))
            writer.byte(kind)
            if let id { writer.integer(id) }
            writer.write(value)
            assert(writer.offset == size, "encodedSize(of:) disagrees with the encoding")
            return size
        }
    }

    /// The number of bytes `encode` writes for `value`.
    public static func encodedSize(of value: Value) -> Int {
        switch value {
        case .nil, .bool: return 1
        case .int(let i): return RawWriter.intSize(i)
        case .float: return 9
        case .string(let s):
            let count = s.utf8.count
            return RawWriter.headerSize(count, fixMax: 31, hasB8: true) + count
        case .bytes(let b): return RawWriter.headerSize(b.count, fixMax: -1, hasB8: true) + b.count
        case .array(let elements):
            var size = RawWriter.headerSize(elements.count, fixMax: 15, hasB8: false)
            for element in elements { size += encodedSize(of: element) }
            return size
        case .map(let entries):
            var size = RawWriter.headerSize(entries.count, fixMax: 15, hasB8: false)
            for entry in entries { size += encodedSize(of: entry.key) + encodedSize(of: entry.value) }
            return size
        }
    }

    /// The encoding of `value` as bytes.
    public static func encode(_ value: Value) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        encode(value, into: &buffer)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}

/// Writes encodings into memory already reserved for them (`MessagePack.encodedSize(of:)`).
private struct RawWriter {
    let base: UnsafeMutableRawPointer
    var offset = 0

    mutating func write(_ value: Value) {
        switch value {
        case .nil: byte(0xc0)
        case .bool(let b): byte(b ? 0xc3 : 0xc2)
        case .int(let i): int(i)
        case .float(let d):
            byte(0xcb)
            integer(d.bitPattern)
        case .string(let s):
            let count = s.utf8.count
            header(count, fix: 0xa0, fixMax: 31, b8: 0xd9, b16: 0xda, b32: 0xdb)
            if s.utf8.withContiguousStorageIfAvailable({ bytes(UnsafeRawBufferPointer($0)) }) == nil {
                for unit in s.utf8 { byte(unit) }
            }
        case .bytes(let b):
            header(b.count, fix: nil, fixMax: 0, b8: 0xc4, b16: 0xc5, b32: 0xc6)
            b.withUnsafeBytes { bytes($0) }
        case .array(let elements):
            header(elements.count, fix: 0x90, fixMax: 15, b8: nil, b16: 0xdc, b32: 0xdd)
            for element in elements { write(element) }
        case .map(let entries):
            header(entries.count, fix: 0x80, fixMax: 15, b8: nil, b16: 0xde, b32: 0xdf)
            for entry in entries {
                write(entry.key)
                write(entry.value)
            }
        }
    }

    /// The size of a length header: one byte up to `fixMax`, then 8, 16 or 32 bits of length.
    static func headerSize(_ count: Int, fixMax: Int, hasB8: Bool) -> Int {
        if count <= fixMax { return 1 }
        if hasB8 && count <= 0xff { return 2 }
        return count <= 0xffff ? 3 : 5
    }

    /// The size of an integer in its smallest representation.
    static func intSize(_ i: Int64) -> Int {
        switch i {
        case -32...0x7f: return 1
        case Int64(Int8.min)...0xff: return 2
        case Int64(Int16.min)...0xffff: return 3
        case Int64(Int32.min)...0xffff_ffff: return 5
        default: return 9
        }
    }

    mutating func byte(_ value: UInt8) {
        base.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
        offset += 1
    }

    mutating func integer<I: FixedWidthInteger>(_ value: I) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: I.self)
        offset += MemoryLayout<I>.size
    }

    private mutating func bytes(_ source: UnsafeRawBufferPointer) {
        guard let address = source.baseAddress, source.count > 0 else { return }
        (base + offset).copyMemory(from: address, byteCount: source.count)
        offset += source.count
    }

    private mutating func int(_ i: Int64) {
        switch i {
        case 0...0x7f: byte(UInt8(i))
        case -32..<0: byte(UInt8(bitPattern: Int8(i)))
        case 0x80...0xff:
            byte(0xcc)
            byte(UInt8(i))
        case 0x100...0xffff:
            byte(0xcd)
            integer(UInt16(i))
        case 0x10000...0xffff_ffff:
            byte(0xce)
            integer(UInt32(i))
        case Int64(Int8.min)..<0:
            byte(0xd0)
            byte(UInt8(bitPattern: Int8(i)))
        case Int64(Int16.min)..<0:
            byte(0xd1)
            integer(Int16(i))
        case Int64(Int32.min)..<0:
            byte(0xd2)
            integer(Int32(i))
        default:
            byte(0xd3)
            integer(i)
        }
    }

    private mutating func header(_ count: Int, fix: UInt8?, fixMax: Int, b8: UInt8?, b16: UInt8, b32: UInt8) {
        if let fix, count <= fixMax {
            byte(fix | UInt8(count))
        } else if let b8, count <= 0xff {
            byte(b8)
            byte(UInt8(count))
        } else if count <= 0xffff {
            byte(b16)
            integer(UInt16(count))
        } else {
            byte(b32)
            integer(UInt32(truncatingIfNeeded: count))
        }
    }
}
