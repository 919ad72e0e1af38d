import CLuaShim
import TrellisWire

/// Turns a Lua value on the stack into a `Value`, or says exactly which part of it is not one.
///
/// Tables are read raw (no metamethods run), so reading can never call script code. A table
/// whose keys are exactly 1...n is an array (an empty table is an empty array); any other
/// table is a map with integer and string keys. Depth, size and cycles are checked, and an
/// error names the offending field, e.g. `messages[2].msg.handler`.
struct LuaValueReader {
    struct Failure: Error {
        let message: String
        let hint: String?
    }

    private enum PathComponent {
        case field(String)
        case index(Int64)
    }

    private let handle: OpaquePointer
    private let limits: ScriptLimits
    private let root: String
    private var path: [PathComponent] = []
    /// The tables being read, outermost first (at most `maxValueDepth`): a cycle returns to one.
    private var open: [UnsafeRawPointer] = []
    private var elements = 0
    private var stringBytes = 0

    init(handle: OpaquePointer, limits: ScriptLimits, root: String) {
        self.handle = handle
        self.limits = limits
        self.root = root
    }

    /// Reads the value at stack `index`.
    mutating func read(at index: Int32) throws(Failure) -> Value {
        try value(at: index < 0 ? trellis_top(handle) + 1 + index : index, depth: 0)
    }

    /// The string at `index` as `.string` when it is UTF-8, `.bytes` otherwise; `.nil` when
    /// the value there is not a string.
    static func string(_ handle: OpaquePointer, at index: Int32) -> Value {
        var length = 0
        guard let bytes = trellis_to_string(handle, index, &length) else { return .nil }
        return string(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    /// `.string` for UTF-8 bytes, `.bytes` otherwise.
    private static func string(_ buffer: UnsafeRawBufferPointer) -> Value {
        // ASCII (peer ids, message keys) skips the general validation, which is several times slower.
        if buffer.allSatisfy({ $0 < 0x80 }) { return .string(String(decoding: buffer, as: UTF8.self)) }
        if let text = String(validating: buffer, as: UTF8.self) { return .string(text) }
        return .bytes(Array(buffer))
    }

    private mutating func value(at index: Int32, depth: Int) throws(Failure) -> Value {
        elements += 1
        if elements > limits.maxValueElements {
            throw fail("holds more than \(limits.maxValueElements) values", hint: "send or return less at once")
        }
        switch Int(trellis_type(handle, index)) {
        case TRELLIS_TNIL, TRELLIS_TNONE:
            return .nil
        case TRELLIS_TBOOLEAN:
            return .bool(trellis_to_boolean(handle, index) != 0)
        case TRELLIS_TNUMBER:
            if trellis_is_integer(handle, index) != 0 { return .int(trellis_to_integer(handle, index)) }
            return .float(trellis_to_number(handle, index))
        case TRELLIS_TSTRING:
            return try countedString(at: index)
        case TRELLIS_TTABLE:
            return try table(at: index, depth: depth)
        default:
            let type = String(cString: trellis_type_name(handle, trellis_type(handle, index)))
            throw fail(
                "is a \(type)",
                hint: "only nil, booleans, numbers, strings and tables of them can cross the script boundary"
            )
        }
    }

    private mutating func table(at index: Int32, depth: Int) throws(Failure) -> Value {
        guard depth < limits.maxValueDepth else {
            throw fail("is nested deeper than \(limits.maxValueDepth) levels", hint: "flatten the value")
        }
        guard let identity = trellis_to_pointer(handle, index), !open.contains(identity) else {
            throw fail("contains itself", hint: "a value cannot hold a table that holds it (a cycle)")
        }
        open.append(identity)
        let top = trellis_top(handle)
        defer {
            trellis_settop(handle, top)
            open.removeLast()
        }
        guard trellis_push_nil(handle) > 0 else { throw fail("is too deeply nested for the Lua stack", hint: nil) }
        var numbered: [(key: Int64, value: Value)] = []
        var named: [Value.MapEntry] = []
        while true {
            let more = trellis_next(handle, index)
            if more == 0 { break }
            if more < 0 { throw fail("is too deeply nested for the Lua stack", hint: nil) }
            let key = try self.key(at: top + 1)
            switch key {
            case .int(let number): path.append(.index(number))
            default: path.append(.field(key.stringValue ?? key.description))
            }
            let element = try value(at: top + 2, depth: depth + 1)
            path.removeLast()
            if case .int(let number) = key { numbered.append((number, element)) } else { named.append(.init(key, element)) }
            trellis_settop(handle, top + 1)
        }
        // Lua lists an array part in order: most arrays need no sort.
        if named.isEmpty && Self.isArray(numbered) { return .array(numbered.map(\.value)) }
        numbered.sort { $0.key < $1.key }
        if named.isEmpty && Self.isArray(numbered) { return .array(numbered.map(\.value)) }
        let entries = numbered.map { Value.MapEntry(.int($0.key), $0.value) } + named
        return .map(entries.sorted(by: Value.canonicalKeyOrder))
    }

    /// Whether the keys, in this order, are exactly 1...n.
    private static func isArray(_ numbered: [(key: Int64, value: Value)]) -> Bool {
        numbered.enumerated().allSatisfy { $0.offset + 1 == $0.element.key }
    }

    /// The string at `index`, its bytes counted against `maxValueBytes`.
    private mutating func countedString(at index: Int32) throws(Failure) -> Value {
        var length = 0
        guard let bytes = trellis_to_string(handle, index, &length) else { return .nil }
        stringBytes += length
        if stringBytes > limits.maxValueBytes {
            throw fail("holds more than \(limits.maxValueBytes) bytes of strings", hint: "send or return less at once")
        }
        return Self.string(UnsafeRawBufferPointer(start: bytes, count: length))
    }

    private mutating func key(at index: Int32) throws(Failure) -> Value {
        switch Int(trellis_type(handle, index)) {
        case TRELLIS_TSTRING:
            return try countedString(at: index)
        case TRELLIS_TNUMBER where trellis_is_integer(handle, index) != 0:
            return .int(trellis_to_integer(handle, index))
        default:
            let type = String(cString: trellis_type_name(handle, trellis_type(handle, index)))
            throw fail("has a \(type) key", hint: "table keys must be strings or integers")
        }
    }

    private func fail(_ problem: String, hint: String?) -> Failure {
        var name = root
        for component in path {
            switch component {
            case .index(let number): name += "[\(number)]"
            case .field(let field) where isIdentifier(field): name += ".\(field)"
            case .field(let field): name += "[\(String(reflecting: field))]"
            }
        }
        return Failure(message: "\(name) \(problem)", hint: hint)
    }

    private func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else {
            return false
        }
        return text.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) }
    }
}
