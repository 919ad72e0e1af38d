/// Decides which repeated reports reach the log: each distinct report at once, then at most
/// once per `interval` milliseconds, saying how many repeats were held back meanwhile. A
/// script that fails on every tick thus costs a log line every few seconds, not hundreds.
struct LogThrottle {
    /// Milliseconds between two lines for the same report.
    let interval: Int64
    /// Distinct reports remembered; older ones are forgotten past this.
    let capacity: Int

    private var seen: [String: (loggedAt: Int64, held: Int)] = [:]

    init(interval: Int64 = 10_000, capacity: Int = 256) {
        self.interval = interval
        self.capacity = capacity
    }

    /// Whether to log `report` now; if so, how many repeats of it were held back since it was
    /// last logged.
    mutating func admit(_ report: String, now: Int64) -> Int? {
        if let entry = seen[report], now - entry.loggedAt < interval {
            seen[report] = (entry.loggedAt, entry.held + 1)
            return nil
        }
        let held = seen[report]?.held ?? 0
        if seen.count >= capacity { seen = seen.filter { now - $0.value.loggedAt < interval } }
        seen[report] = (now, 0)
        return held
    }
}
