extension String {
    /// Whether the two strings have the same UTF-8 bytes. Swift's `==` also takes canonically
    /// equivalent texts ("é" as one code point, or "e" and a combining accent) for equal; the
    /// script contract does not. Compares the contiguous storage directly, without the
    /// per-character walk of `utf8.elementsEqual`.
    public func hasSameBytes(as other: String) -> Bool {
        utf8.count == other.utf8.count && compareBytes(with: other) == 0
    }

    /// Whether this string's UTF-8 bytes sort before `other`'s, byte-wise.
    public func bytesPrecede(_ other: String) -> Bool { compareBytes(with: other) < 0 }

    /// Negative, zero or positive as this string's UTF-8 bytes sort before, with or after
    /// `other`'s; a prefix sorts first.
    private func compareBytes(with other: String) -> Int {
        var (mine, theirs) = (self, other)
        return mine.withUTF8 { left in
            theirs.withUTF8 { right in
                for offset in 0..<Swift.min(left.count, right.count) where left[offset] != right[offset] {
                    return Int(left[offset]) - Int(right[offset])
                }
                return left.count - right.count
            }
        }
    }
}
