/// SplitMix64: a small, fast generator whose sequence is fixed by its seed on every platform,
/// so that random choices (which nodes to kill, which messages to lose) repeat exactly in the
/// simulator, in topology runs and in fault injection.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound` (`bound` > 0).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// `true` with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { p > 0 && Double(next() >> 11) / Double(1 << 53) < p }
}
