/// A string as a set element or dictionary key that equals another only when their bytes do.
///
/// The script contract compares strings byte for byte, and placement hashes their bytes.
/// Swift's `String` equality does not: it takes canonically equivalent texts ("é" as one code
/// point, or "e" followed by a combining accent) for one string. Keyed by `String`, two process
/// ids that are distinct for Lua and for placement would share one process.
public struct ExactString: Hashable, Sendable {
    /// The string, with its bytes as they were given.
    public let text: String

    public init(_ text: String) {
        self.text = text
    }

    public static func == (lhs: ExactString, rhs: ExactString) -> Bool {
        lhs.text.hasSameBytes(as: rhs.text)
    }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
