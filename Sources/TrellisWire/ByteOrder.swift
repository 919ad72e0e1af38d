/// Byte-wise order, the order of strings in the script contract.
enum ByteOrder {
    /// Negative, zero or positive as `left` sorts before, with or after `right`; a prefix
    /// sorts first.
    static func compare(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Int {
        for offset in 0..<min(left.count, right.count) where left[offset] != right[offset] {
            return Int(left[offset]) - Int(right[offset])
        }
        return left.count - right.count
    }
}

extension String {
    /// Whether the two strings have the same UTF-8 bytes. Swift's `==` also takes canonically
    /// equivalent texts ("é" as one code point, or "e" and a combining accent) for equal; the
    /// script contract does not. Compares the contiguous storage directly, without the
    /// per-character walk of `utf8.elementsEqual`.
    public func hasSameBytes(as other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        var (mine, theirs) = (self, other)
        return mine.withUTF8 { left in theirs.withUTF8 { right in left.elementsEqual(right) } }
    }
}
