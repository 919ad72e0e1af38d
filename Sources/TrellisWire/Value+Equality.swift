extension Value {
    /// Whether two values are the same, strings compared byte for byte as the script contract
    /// compares them (Swift's `String` equality would take "é" and "e" with a combining accent,
    /// two different Lua strings, for one). Floats compare as Swift `Double`s: `nan` differs
    /// from itself.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.nil, .nil): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.float(a), .float(b)): return a == b
        case let (.string(a), .string(b)): return a.hasSameBytes(as: b)
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.map(a), .map(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .nil: hasher.combine(0 as UInt8)
        case .bool(let value): hasher.combine(1 as UInt8); hasher.combine(value)
        case .int(let value): hasher.combine(2 as UInt8); hasher.combine(value)
        case .float(let value): hasher.combine(3 as UInt8); hasher.combine(value)
        case .string(var value): hasher.combine(4 as UInt8); value.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        case .bytes(let value): hasher.combine(5 as UInt8); hasher.combine(value)
        case .array(let value): hasher.combine(6 as UInt8); hasher.combine(value)
        case .map(let value): hasher.combine(7 as UInt8); hasher.combine(value)
        }
    }
}
