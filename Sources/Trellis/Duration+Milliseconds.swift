extension Duration {
    /// The whole milliseconds in this duration (rounded toward zero), as membership clocks and
    /// call envelopes count time.
    var wholeMilliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }
}
