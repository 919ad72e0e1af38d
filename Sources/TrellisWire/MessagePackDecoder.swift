import NIOCore

/// Limits that bound what decoding may cost, whatever the input.
public struct DecodingLimits: Sendable, Equatable {
    /// The deepest nesting of arrays and maps accepted.
    public var maxDepth: Int

    public init(maxDepth: Int = 64) {
        self.maxDepth = maxDepth
    }

    public static let `default` = DecodingLimits()
}

extension MessagePack {
    /// Decodes exactly one value from the readable bytes of `buffer`, consuming them.
    ///
    /// Never traps and never allocates more than the input's size: every length is checked
    /// against the bytes actually present before anything is reserved.
    public static func decode(_ buffer: inout ByteBuffer, limits: DecodingLimits = .default) throws(WireError) -> Value {
        let value = try decodePrefix(&buffer, limits: limits)
        if buffer.readableBytes > 0 { throw .trailingBytes(buffer.readableBytes) }
        return value
    }

    /// Decodes exactly one value from `bytes`.
    public static func decode(_ bytes: [UInt8], limits: DecodingLimits = .default) throws(WireError) -> Value {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return try decode(&buffer, limits: limits)
    }

    /// Decodes one value from the front of `buffer`, leaving what follows it unread.
    ///
    /// Reads the buffer's memory directly and moves its reader index once, at the end.
    public static func decodePrefix(_ buffer: inout ByteBuffer, limits: DecodingLimits = .default) throws(WireError) -> Value {
        let decoded = buffer.withUnsafeReadableBytes { memory -> Result<(Value, Int), WireError> in
            var reader = RawReader(memory: memory, limits: limits)
            return Result { () throws(WireError) in (try reader.value(depth: 0), reader.offset) }
        }
        let (value, consumed) = try decoded.get()
        buffer.moveReaderIndex(forwardBy: consumed)
        return value
    }
}

/// Reads encodings from memory, checking every length against the bytes left.
private struct RawReader {
    let memory: UnsafeRawBufferPointer
    let limits: DecodingLimits
    var offset = 0

    init(memory: UnsafeRawBufferPointer, limits: DecodingLimits) {
        self.memory = memory
        self.limits = limits
    }

    private var remaining: Int { memory.count - offset }

    mutating func value(depth: Int) throws(WireError) -> Value {
        let type: UInt8 = try read()
        switch type {
        case 0x00...0x7f: return .int(Int64(type))
        case 0xe0...0xff: return .int(Int64(Int8(bitPattern: type)))
        case 0x80...0x8f: return try map(count: Int(type & 0x0f), depth: depth)
        case 0x90...0x9f: return try array(count: Int(type & 0x0f), depth: depth)
        case 0xa0...0xbf: return try string(count: Int(type & 0x1f))
        case 0xc0: return .nil
        case 0xc2: return .bool(false)
        case 0xc3: return .bool(true)
        case 0xc4: return .bytes(try bytes(count: Int(try read() as UInt8)))
        case 0xc5: return .bytes(try bytes(count: Int(try read() as UInt16)))
        case 0xc6: return .bytes(try bytes(count: Int(try read() as UInt32)))
        case 0xca: return .float(Double(Float(bitPattern: try read())))
        case 0xcb: return .float(Double(bitPattern: try read()))
        case 0xcc: return .int(Int64(try read() as UInt8))
        case 0xcd: return .int(Int64(try read() as UInt16))
        case 0xce: return .int(Int64(try read() as UInt32))
        case 0xcf:
            let u: UInt64 = try read()
            guard let i = Int64(exactly: u) else { throw .integerOutOfRange }
            return .int(i)
        case 0xd0: return .int(Int64(try read() as Int8))
        case 0xd1: return .int(Int64(try read() as Int16))
        case 0xd2: return .int(Int64(try read() as Int32))
        case 0xd3: return .int(try read() as Int64)
        case 0xd9: return try string(count: Int(try read() as UInt8))
        case 0xda: return try string(count: Int(try read() as UInt16))
        case 0xdb: return try string(count: Int(try read() as UInt32))
        case 0xdc: return try array(count: Int(try read() as UInt16), depth: depth)
        case 0xdd: return try array(count: Int(try read() as UInt32), depth: depth)
        case 0xde: return try map(count: Int(try read() as UInt16), depth: depth)
        case 0xdf: return try map(count: Int(try read() as UInt32), depth: depth)
        default: throw .unsupportedType(type)
        }
    }

    private mutating func array(count: Int, depth: Int) throws(WireError) -> Value {
        guard depth < limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }
        // Every element takes at least one byte: a count above what is left cannot be honest.
        guard count <= remaining else { throw .truncated(needed: count - remaining) }
        var elements: [Value] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try value(depth: depth + 1)) }
        return .array(elements)
    }

    private mutating func map(count: Int, depth: Int) throws(WireError) -> Value {
        guard depth < limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }
        guard count * 2 <= remaining else { throw .truncated(needed: count * 2 - remaining) }
        var entries: [Value.MapEntry] = []
        entries.reserveCapacity(count)
        var inOrder = true
        for _ in 0..<count {
            let key = try value(depth: depth + 1)
            switch key {
            case .int, .string, .bytes: break
            default: throw .unsupportedMapKey
            }
            let entry = Value.MapEntry(key, try value(depth: depth + 1))
            if let last = entries.last, !Value.canonicalKeyOrder(last, entry) {
                if !Value.canonicalKeyOrder(entry, last) { throw .duplicateMapKey }
                inOrder = false
            }
            entries.append(entry)
        }
        if !inOrder {
            entries.sort(by: Value.canonicalKeyOrder)
            for i in entries.indices.dropFirst() where !Value.canonicalKeyOrder(entries[i - 1], entries[i]) {
                throw .duplicateMapKey
            }
        }
        return .map(entries)
    }

    private mutating func string(count: Int) throws(WireError) -> Value {
        let units = try take(count).assumingMemoryBound(to: UInt8.self)
        // Decoding repairs invalid UTF-8, so the bytes come back unchanged exactly when they are
        // valid; cheaper than validating through the generic `String(validating:as:)`.
        var string = String(decoding: units, as: UTF8.self)
        let unchanged = string.withUTF8 { ByteOrder.compare(UnsafeRawBufferPointer($0), UnsafeRawBufferPointer(units)) == 0 }
        return unchanged ? .string(string) : .bytes(Array(units))
    }

    private mutating func bytes(count: Int) throws(WireError) -> [UInt8] {
        let source = try take(count)
        return [UInt8](unsafeUninitializedCapacity: count) { destination, initialized in
            if let address = source.baseAddress, count > 0 {
                UnsafeMutableRawPointer(destination.baseAddress!).copyMemory(from: address, byteCount: count)
            }
            initialized = count
        }
    }

    private mutating func take(_ count: Int) throws(WireError) -> UnsafeRawBufferPointer {
        guard count <= remaining else { throw .truncated(needed: count - remaining) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: memory[offset..<(offset + count)])
    }

    private mutating func read<I: FixedWidthInteger>() throws(WireError) -> I {
        let size = MemoryLayout<I>.size
        guard size <= remaining else { throw .truncated(needed: size - remaining) }
        defer { offset += size }
        return I(bigEndian: memory.loadUnaligned(fromByteOffset: offset, as: I.self))
    }
}
