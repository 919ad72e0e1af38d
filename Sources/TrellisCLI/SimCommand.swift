import ArgumentParser
import Foundation
import TrellisTopology

/// `trellis sim FILE`: runs a topology on the deterministic simulator.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run a topology on the simulator: virtual time, in-memory network, same scripts.",
        discussion: "The same file and seed give the same run, byte for byte: compare the digest. Exits 0 only when every expectation held."
    )

    @Argument(help: "The topology file (TOML), e.g. examples/topologies/hyparview-16.toml.")
    var file: String

    @Option(help: "Seed of the scripts' math.random.")
    var seed: UInt64 = 1

    @Option(help: "One-way network latency in milliseconds.")
    var latency: Int64 = 1

    @Option(help: "The fraction of membership messages and heartbeats the network loses (0 to 1).")
    var loss: Double = 0

    @Option(help: "Write the final members graph to this file in Graphviz DOT format.")
    var dot: String?

    @OptionGroup var pictures: PictureOptions

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let topology = try loadTopology(file)
        guard latency >= 1 else { throw ValidationError("--latency must be at least 1 ms") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be from 0 up to (not including) 1") }
        let report: SimReport
        var progressLine = SimProgressLine(enabled: !json)
        do {
            report = try SimRunner(topology: topology, seed: seed, latencyMs: latency, lossRate: loss).run { progressLine.show($0) }
        } catch {
            progressLine.finish()
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
        progressLine.finish()
        if let dot { try writeDot(MembersGraphDot.render(report.nodes, of: topology), to: dot) }
        try pictures.write(report.nodes, of: topology)
        print(json ? report.json() : report.table())
        if !report.ok { throw ExitCode(1) }
    }
}

/// How far a long simulation has got, on standard error: rewritten in place on a terminal a
/// few times a second, otherwise one line every ten seconds (a short run prints none).
struct SimProgressLine {
    private let enabled: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private let started = ContinuousClock.now
    private var shownAt: ContinuousClock.Instant?

    init(enabled: Bool) { self.enabled = enabled }

    mutating func show(_ progress: SimProgress) {
        let now = ContinuousClock.now
        guard enabled, now - (shownAt ?? started) >= (terminal ? .milliseconds(250) : .seconds(10)) else { return }
        shownAt = now
        let wall = Double((now - started).components.seconds)
        var line = String(
            format: "[virtual %6.1fs of %.0fs, wall %.0fs] %ld live nodes, %ld membership messages",
            Double(progress.virtualMs) / 1_000, Double(progress.timeoutMs) / 1_000, wall, progress.live, progress.messages)
        if progress.checksTotal > 0 { line += ", expectations \(progress.checksPassed)/\(progress.checksTotal)" }
        FileHandle.standardError.write(Data((terminal ? "\r\(line) " : "\(line)\n").utf8))
    }

    /// Ends the line rewritten in place, if one was shown, so that what follows starts afresh.
    func finish() {
        if terminal && shownAt != nil { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
