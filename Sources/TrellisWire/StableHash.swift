/// The hash every node and script agrees on: FNV-1a 64 over the bytes, then murmur3's
/// `fmix64` finaliser so that similar ids spread over the whole range.
///
/// It is fixed and platform-independent (never Swift's per-process seeded `Hasher`); Lua
/// scripts see the same function as `trellis.hash`.
public enum StableHash {
    /// The 64-bit hash of `bytes`.
    @inlinable
    public static func hash64<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        Steps().adding(bytes).value
    }

    /// The shard of `id` among `count` shards: the hash of its UTF-8 bytes modulo `count`.
    @inlinable
    public static func shard(_ id: String, count: Int = 4096) -> Int {
        precondition(count > 0, "the shard count must be positive")
        return Int(hash64(id.utf8) % UInt64(count))
    }

    /// The hash taken in steps, so that a prefix shared by many keys is hashed once:
    /// `Steps().adding(a).adding(b).value == hash64(a + b)`.
    public struct Steps: Sendable {
        @usableFromInline var state: UInt64 = 0xcbf2_9ce4_8422_2325

        @inlinable
        public init() {}

        /// The state after `bytes` too.
        @inlinable
        public func adding<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Steps {
            var next = self
            for byte in bytes {
                next.state ^= UInt64(byte)
                next.state &*= 0x0000_0100_0000_01b3
            }
            return next
        }

        /// The hash of everything added.
        @inlinable
        public var value: UInt64 {
            var hash = state
            hash ^= hash >> 33
            hash &*= 0xff51_afd7_ed55_8ccd
            hash ^= hash >> 33
            hash &*= 0xc4ce_b9fe_1a85_ec53
            hash ^= hash >> 33
            return hash
        }
    }
}
