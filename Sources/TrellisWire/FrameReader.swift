import NIOCore

/// Length-prefixed frames: a 4-byte big-endian length, then that many bytes of payload.
public enum Framing {
    /// The default largest payload accepted: 8 MiB.
    public static let defaultMaxFrameSize = 8 * 1024 * 1024

    /// The size of the length prefix.
    public static let prefixSize = 4

    /// Appends one frame holding `payload` to `buffer`.
    public static func writeFrame(_ payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(payload.readableBytes))
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    /// Appends one frame to `buffer`, letting `body` write its payload in place.
    ///
    /// This is how the transport encodes without a temporary buffer per message.
    public static func writeFrame(into buffer: inout ByteBuffer, _ body: (inout ByteBuffer) -> Void) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        body(&buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - lengthIndex - prefixSize), at: lengthIndex)
    }
}

/// Splits a byte stream into frames, refusing any frame over `maxFrameSize`.
public struct FrameReader: Sendable {
    /// The largest payload accepted.
    public let maxFrameSize: Int

    public init(maxFrameSize: Int = Framing.defaultMaxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    /// The next complete frame's payload, or `nil` when more bytes are needed.
    ///
    /// An oversized length prefix is an error as soon as the prefix arrives, before any of the
    /// payload is buffered.
    public func nextFrame(_ buffer: inout ByteBuffer) throws(WireError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard Int(length) <= maxFrameSize else { throw .frameTooLarge(length: Int(length), limit: maxFrameSize) }
        guard buffer.readableBytes >= Framing.prefixSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Framing.prefixSize)
        return buffer.readSlice(length: Int(length))
    }
}
