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
        let value = try decodeValue(&buffer, depth: 0, limits: limits)
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
    public static func decodePrefix(_ buffer: inout ByteBuffer, limits: DecodingLimits = .default) throws(WireError) -> Value {
        try decodeValue(&buffer, depth: 0, limits: limits)
    }

    private static func decodeValue(_ buffer: inout ByteBuffer, depth: Int, limits: DecodingLimits) throws(WireError) -> Value {
        let type: UInt8 = try read(&buffer)
        switch type {
        case 0x00...0x7f: return .int(Int64(type))
        case 0xe0...0xff: return .int(Int64(Int8(bitPattern: type)))
        case 0x80...0x8f: return try decodeMap(&buffer, count: Int(type & 0x0f), depth: depth, limits: limits)
        case 0x90...0x9f: return try decodeArray(&buffer, count: Int(type & 0x0f), depth: depth, limits: limits)
        case 0xa0...0xbf: return try decodeString(&buffer, count: Int(type & 0x1f))
        case 0xc0: return .nil
        case 0xc2: return .bool(false)
        case 0xc3: return .bool(true)
        case 0xc4: return .bytes(try readBytes(&buffer, count: Int(try read(&buffer) as UInt8)))
        case 0xc5: return .bytes(try readBytes(&buffer, count: Int(try read(&buffer) as UInt16)))
        case 0xc6: return .bytes(try readBytes(&buffer, count: Int(try read(&buffer) as UInt32)))
        case 0xca: return .float(Double(Float(bitPattern: try read(&buffer))))
        case 0xcb: return .float(Double(bitPattern: try read(&buffer)))
        case 0xcc: return .int(Int64(try read(&buffer) as UInt8))
        case 0xcd: return .int(Int64(try read(&buffer) as UInt16))
        case 0xce: return .int(Int64(try read(&buffer) as UInt32))
        case 0xcf:
            let u: UInt64 = try read(&buffer)
            guard let i = Int64(exactly: u) else { throw .integerOutOfRange }
            return .int(i)
        case 0xd0: return .int(Int64(try read(&buffer) as Int8))
        case 0xd1: return .int(Int64(try read(&buffer) as Int16))
        case 0xd2: return .int(Int64(try read(&buffer) as Int32))
        case 0xd3: return .int(try read(&buffer) as Int64)
        case 0xd9: return try decodeString(&buffer, count: Int(try read(&buffer) as UInt8))
        case 0xda: return try decodeString(&buffer, count: Int(try read(&buffer) as UInt16))
        case 0xdb: return try decodeString(&buffer, count: Int(try read(&buffer) as UInt32))
        case 0xdc: return try decodeArray(&buffer, count: Int(try read(&buffer) as UInt16), depth: depth, limits: limits)
        case 0xdd: return try decodeArray(&buffer, count: Int(try read(&buffer) as UInt32), depth: depth, limits: limits)
        case 0xde: return try decodeMap(&buffer, count: Int(try read(&buffer) as UInt16), depth: depth, limits: limits)
        case 0xdf: return try decodeMap(&buffer, count: Int(try read(&buffer) as UInt32), depth: depth, limits: limits)
        default: throw .unsupportedType(type)
        }
    }

    private static func decodeArray(
        _ buffer: inout ByteBuffer, count: Int, depth: Int, limits: DecodingLimits
    ) throws(WireError) -> Value {
        guard depth < limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }
        // Every element takes at least one byte: a count above what is left cannot be honest.
        guard count <= buffer.readableBytes else { throw .truncated(needed: count - buffer.readableBytes) }
        var elements: [Value] = []
        elements.reserveCapacity(count)
        for _ in 0..<count { elements.append(try decodeValue(&buffer, depth: depth + 1, limits: limits)) }
        return .array(elements)
    }

    private static func decodeMap(
        _ buffer: inout ByteBuffer, count: Int, depth: Int, limits: DecodingLimits
    ) throws(WireError) -> Value {
        guard depth < limits.maxDepth else { throw .tooDeep(limit: limits.maxDepth) }
        guard count * 2 <= buffer.readableBytes else { throw .truncated(needed: count * 2 - buffer.readableBytes) }
        var entries: [Value.MapEntry] = []
        entries.reserveCapacity(count)
        var inOrder = true
        for _ in 0..<count {
            let key = try decodeValue(&buffer, depth: depth + 1, limits: limits)
            switch key {
            case .int, .string, .bytes: break
            default: throw .unsupportedMapKey
            }
            let entry = Value.MapEntry(key, try decodeValue(&buffer, depth: depth + 1, limits: limits))
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

    private static func decodeString(_ buffer: inout ByteBuffer, count: Int) throws(WireError) -> Value {
        guard count <= buffer.readableBytes else { throw .truncated(needed: count - buffer.readableBytes) }
        defer { buffer.moveReaderIndex(forwardBy: count) }
        return buffer.withUnsafeReadableBytes { readable in
            let bytes = UnsafeRawBufferPointer(rebasing: readable.prefix(count)).assumingMemoryBound(to: UInt8.self)
            // Decoding repairs invalid UTF-8, so the bytes come back unchanged exactly when they are
            // valid; cheaper than validating through the generic `String(validating:as:)`.
            let string = String(decoding: bytes, as: UTF8.self)
            return string.utf8.elementsEqual(bytes) ? .string(string) : .bytes(Array(bytes))
        }
    }

    private static func readBytes(_ buffer: inout ByteBuffer, count: Int) throws(WireError) -> [UInt8] {
        guard let bytes = buffer.readBytes(length: count) else { throw .truncated(needed: count - buffer.readableBytes) }
        return bytes
    }

    private static func read<I: FixedWidthInteger>(_ buffer: inout ByteBuffer) throws(WireError) -> I {
        guard let value = buffer.readInteger(as: I.self) else {
            throw .truncated(needed: MemoryLayout<I>.size - buffer.readableBytes)
        }
        return value
    }
}
