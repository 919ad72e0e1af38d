import TrellisWire

/// The outcome of `trellis sim`: the same report as `trellis up`, on virtual time, plus the
/// trace digest that a run with the same file and seed reproduces exactly.
public struct SimReport: Codable, Sendable, Equatable {
    /// Whether every expectation held.
    public var ok: Bool
    /// Virtual milliseconds simulated.
    public var elapsedMs: Int
    public var nodes: [UpReport.NodeReport]
    public var checks: [UpReport.Check]
    /// A 64-bit digest (hex) of every node's members at every step of the run.
    public var digest: String
    /// The seed of the scripts' `math.random`.
    public var seed: UInt64
    /// Membership messages delivered.
    public var messages: Int
    /// The overlay's figures at the topology's `[[report]]` times.
    public var reports: [OverlayReport]
    /// What the schedule's fault plans did: messages dropped, delayed, duplicated; nil when
    /// the topology injects no faults.
    public var faults: Faults?

    /// Membership messages and heartbeat answers the fault plans changed.
    public struct Faults: Codable, Sendable, Equatable {
        public var dropped: Int
        public var delayed: Int
        public var duplicated: Int
    }

    enum CodingKeys: String, CodingKey {
        case ok, nodes, checks, digest, seed, messages, reports, faults
        case elapsedMs = "elapsed_ms"
    }

    /// The report as one line of JSON.
    public func json() -> String { oneLineJSON(self) }

    /// The report as a table for people.
    public func table() -> String {
        let figures = reports.isEmpty ? "" : "\n" + reports.map(\.line).joined(separator: "\n")
        return UpReport(ok: ok, elapsedMs: elapsedMs, nodes: nodes, checks: checks).table(maxRows: 40) + figures
            + "\n(virtual time; \(messages) membership messages\(faultLine); seed \(seed); digest \(digest))"
    }

    private var faultLine: String {
        faults.map { "; faults dropped \($0.dropped), delayed \($0.delayed), duplicated \($0.duplicated)" } ?? ""
    }
}
