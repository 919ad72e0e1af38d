/// A value kept in its MessagePack encoding: how membership messages travel between an
/// overlay script and the wire (or the simulator's next node). A script's message is encoded
/// once where it leaves the script and pushed into the receiving script from the same bytes;
/// nothing in between needs it as a `Value`, so nothing builds one.
public struct EncodedValue: Sendable, Hashable, CustomStringConvertible {
    /// The encoding, exactly as `MessagePack.encode` writes it.
    public let bytes: [UInt8]

    /// Encodes `value`.
    public init(_ value: Value) {
        bytes = MessagePack.encode(value)
    }

    /// Adopts bytes that hold one value as `MessagePack.encode` would have written it (an
    /// encoder in this process wrote them); use `init(_:)` for anything else.
    public init(encoding bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The value, decoded (for fault rules, logs and tests; the message path never needs it).
    public var value: Value {
        // Bytes from one of this process's encoders always decode; `.nil` marks a broken one.
        (try? MessagePack.decode(bytes)) ?? .nil
    }

    public var description: String { value.description }
}
