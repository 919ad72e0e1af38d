/// A value that crosses the wire or the Swift/Lua boundary.
///
/// This is the value model of the script contract: nil, booleans, 64-bit integers, floats,
/// strings, byte strings, arrays and maps. Lua strings that are valid UTF-8 become `.string`,
/// any other Lua string becomes `.bytes`; both become Lua strings again on the way back.
///
/// Maps keep their entries in a canonical order (integer keys ascending, then string keys
/// byte-wise ascending) so that encoding a map is deterministic on every node and platform.
public enum Value: Sendable, Hashable {
    case `nil`
    case bool(Bool)
    case int(Int64)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case array([Value])
    case map([MapEntry])

    /// One entry of a `.map`.
    public struct MapEntry: Sendable, Hashable {
        public var key: Value
        public var value: Value

        public init(_ key: Value, _ value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// A map from string keys, in canonical key order.
    public static func map(_ fields: [String: Value]) -> Value {
        .map(fields.map { MapEntry(.string($0.key), $0.value) }.sorted(by: Value.canonicalKeyOrder))
    }

    /// The order of map keys on the wire: integers ascending, then strings and byte strings
    /// byte-wise ascending (a string before the byte string of the same bytes), then anything
    /// else by its encoded form. Two integer, string or byte-string keys are the same key
    /// exactly when neither precedes the other.
    public static func canonicalKeyOrder(_ lhs: MapEntry, _ rhs: MapEntry) -> Bool {
        switch (lhs.key, rhs.key) {
        case let (.int(a), .int(b)): return a < b
        case (.int, _): return true
        case (_, .int): return false
        default:
            let order = lhs.key.withKeyBytes { left in rhs.key.withKeyBytes { right in ByteOrder.compare(left, right) } }
            if order != 0 { return order < 0 }
            guard case .string = lhs.key, case .bytes = rhs.key else { return false }
            return true
        }
    }

    /// Calls `body` with the bytes a key sorts by: a string's UTF-8, a byte string's bytes,
    /// anything else's encoding.
    private func withKeyBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        switch self {
        case .string(var text): return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        case .bytes(let bytes): return bytes.withUnsafeBytes(body)
        default: return MessagePack.encode(self).withUnsafeBytes(body)
        }
    }
}

extension Value {
    /// Looks up a string key in a `.map`; `nil` for anything else.
    public subscript(key: String) -> Value? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == .string(key) }?.value
    }

    /// The string, when this is a `.string` (or a `.bytes` holding valid UTF-8).
    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(validating: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The integer, when this is an `.int` (or a `.float` with an integral value).
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .float(let d): return d.rounded() == d ? Int64(exactly: d) : nil
        default: return nil
        }
    }

    /// The elements, when this is an `.array`.
    public var arrayValue: [Value]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Whether this is `.nil`.
    public var isNil: Bool {
        if case .nil = self { return true }
        return false
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .float(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .nil }
}

extension Value: CustomStringConvertible {
    public var description: String {
        switch self {
        case .nil: return "nil"
        case .bool(let b): return String(b)
        case .int(let i): return String(i)
        case .float(let d): return String(d)
        case .string(let s): return String(reflecting: s)
        case .bytes(let b): return "<\(b.count) bytes>"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.map { "\($0.key.description): \($0.value.description)" }.joined(separator: ", ") + "}"
        }
    }
}
