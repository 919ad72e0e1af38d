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
        do {
            report = try SimRunner(topology: topology, seed: seed, latencyMs: latency, lossRate: loss).run()
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(2)
        }
        if let dot { try writeDot(MembersGraphDot.render(report.nodes, of: topology), to: dot) }
        try pictures.write(report.nodes, of: topology)
        print(json ? report.json() : report.table())
        if !report.ok { throw ExitCode(1) }
    }
}
