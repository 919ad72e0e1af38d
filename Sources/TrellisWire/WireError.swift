/// Why bytes from the wire could not be turned into a frame or a value.
///
/// Every decoding failure is one of these: the decoders never trap on bad input.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input ended inside a value; `needed` more bytes were expected.
    case truncated(needed: Int)
    /// A byte that starts no MessagePack value we accept (0xc1, or an extension type).
    case unsupportedType(UInt8)
    /// An unsigned integer above `Int64.max`.
    case integerOutOfRange
    /// Nesting deeper than the configured limit.
    case tooDeep(limit: Int)
    /// A map key that is neither an integer nor a string.
    case unsupportedMapKey
    /// The same key twice in one map.
    case duplicateMapKey
    /// Bytes left over after the value.
    case trailingBytes(Int)
    /// A frame whose length prefix is over the configured maximum.
    case frameTooLarge(length: Int, limit: Int)
    /// A frame whose first byte names no message kind this version knows.
    case unknownMessageKind(UInt8)
    /// A message whose fields are not those of its kind.
    case malformedMessage(String)

    public var description: String {
        switch self {
        case .truncated(let needed):
            return "truncated input: \(needed) more byte(s) expected; the sender wrote a partial value"
        case .unsupportedType(let byte):
            return "unsupported MessagePack type byte 0x\(String(byte, radix: 16)); Trellis values are nil, bool, int, float, str, bin, array and map"
        case .integerOutOfRange:
            return "unsigned integer above 2^63-1; Trellis integers are signed 64-bit"
        case .tooDeep(let limit):
            return "value nested deeper than \(limit) levels; flatten it or raise the depth limit"
        case .unsupportedMapKey:
            return "map key is neither an integer nor a string"
        case .duplicateMapKey:
            return "map has the same key twice"
        case .trailingBytes(let count):
            return "\(count) byte(s) after the end of the value"
        case .frameTooLarge(let length, let limit):
            return "frame of \(length) bytes exceeds the maximum of \(limit); raise maxFrameSize on both nodes or send smaller messages"
        case .unknownMessageKind(let kind):
            return "unknown message kind \(kind); the peer speaks another protocol version"
        case .malformedMessage(let why):
            return "malformed message: \(why)"
        }
    }
}
