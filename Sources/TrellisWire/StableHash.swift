/// The hash every node and script agrees on: FNV-1a 64 over the bytes, then murmur3's
/// `fmix64` finaliser so that similar ids spread over the whole range.
///
/// It is fixed and platform-independent (never Swift's per-process seeded `Hasher`); Lua
/// scripts see the same function as `trellis.hash`.
public enum StableHash {
    /// The 64-bit hash of `bytes`.
    public static func hash64<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }

    /// The shard of `id` among `count` shards: the hash of its UTF-8 bytes modulo `count`.
    public static func shard(_ id: String, count: Int = 4096) -> Int {
        precondition(count > 0, "the shard count must be positive")
        return Int(hash64(id.utf8) % UInt64(count))
    }
}
