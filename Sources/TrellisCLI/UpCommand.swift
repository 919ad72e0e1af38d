import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TrellisTopology

/// `trellis up FILE`: runs a topology's nodes in this process and checks its expectations.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a topology's nodes on 127.0.0.1 in this process, run its plan, check its expectations.",
        discussion: "Exits 0 only when every expectation held."
    )

    @Argument(help: "The topology file (TOML), e.g. examples/topologies/quickstart.toml.")
    var file: String

    @Option(help: "Write the final members graph to this file in Graphviz DOT format.")
    var dot: String?

    @OptionGroup var pictures: PictureOptions

    @OptionGroup var liveView: LiveViewOptions

    @Flag(help: "Print one JSON object instead of progress and a table.")
    var json = false

    @Flag(help: "Run until the topology's timeout, hot-swapping every node's overlay whenever the script file changes.")
    var watch = false

    @Option(help: "Log level of the nodes: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "error"

    func run() async throws {
        let topology = try loadTopology(file)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let report = try await run(topology, on: group)
        try? await group.shutdownGracefully()
        if let dot { try writeDot(MembersGraphDot.render(report.nodes, of: topology), to: dot) }
        try pictures.write(report.nodes, of: topology)
        if json {
            print(report.json())
        } else {
            FileHandle.standardError.write(Data("\n".utf8))
            print(report.table())
        }
        if !report.ok { throw ExitCode(1) }
    }

    private func run(_ topology: Topology, on group: MultiThreadedEventLoopGroup) async throws -> UpReport {
        let runner = UpRunner(topology: topology, group: group, logger: makeLogger(level: logLevel))
        let progressLine = ProgressLine(enabled: !json)
        if !json { print("\(topology.name): \(topology.nodes.count) nodes, overlay \(topology.overlayPath)") }
        let report: UpReport
        do {
            let live = try await liveView.start(title: topology.name, group: group)
            report = try await runner.run(
                watch: watch, onEvent: { event in FileHandle.standardError.write(Data("\n\(event)\n".utf8)) },
                progress: { progress in progressLine.show(progress) }, live: live)
        } catch {
            FileHandle.standardError.write(Data("\n\(error)\n".utf8))
            try? await group.shutdownGracefully()
            throw ExitCode(2)
        }
        return report
    }
}

/// Live progress on standard error: rewritten in place on a terminal, one line per change
/// otherwise (so logs and CI output stay readable).
final class ProgressLine: Sendable {
    private let enabled: Bool
    private let terminal = isatty(STDERR_FILENO) != 0
    private let last = Mutex<String?>(nil)

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: UpProgress) {
        guard enabled else { return }
        let summary = "converged \(progress.converged)/\(progress.live) live nodes, expectations \(progress.checksPassed)/\(progress.checksTotal)"
        let changed = last.withLock { previous in
            defer { previous = summary }
            return previous != summary
        }
        guard terminal || changed else { return }
        let line = String(format: "[%5.1fs] ", Double(progress.elapsedMs) / 1_000) + summary
        FileHandle.standardError.write(Data((terminal ? "\r\(line) " : "\(line)\n").utf8))
    }
}

/// Writes a DOT graph, or exits with status 2 saying why it could not.
func writeDot(_ text: String, to path: String) throws {
    do {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
        FileHandle.standardError.write(Data("cannot write the graph to \(path): \(error.localizedDescription)\n".utf8))
        throw ExitCode(2)
    }
}

/// Reads a topology file; a bad file is reported on standard error and exits with status 2.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try Topology.load(path: path)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(2)
    }
}
