import ArgumentParser
import Foundation

/// `TrellisBench`: messaging benchmarks between two Trellis nodes in separate processes on
/// loopback, printed beside the anchors (distributed Erlang, the C loopback limit) measured in
/// the same run. `scripts/bench` runs the anchors and then this.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "TrellisBench",
        abstract: "Benchmark Trellis messaging between two processes on 127.0.0.1.",
        subcommands: [RunBenchmarks.self, ServeBenchmarks.self, LuaBenchmarks.self, PlacementBenchmarks.self, MemoryBenchmarks.self, HostileBenchmarks.self],
        defaultSubcommand: RunBenchmarks.self
    )
}

/// The sizes of one benchmark run.
struct BenchSizes: ParsableArguments {
    @Option(help: "One-way small messages to send.")
    var small = 2_000_000

    @Option(help: "One-way 1 KiB messages to send.")
    var large = 500_000

    @Option(help: "Sequential request/response round trips.")
    var calls = 100_000

    @Option(help: "Calls made by the concurrent callers, in all.")
    var concurrentCalls = 100_000

    @Option(help: "Concurrent callers.")
    var callers = 16

    @Option(help: "Processes to activate per kind (Swift, Lua, single node).")
    var activations = 100_000

    @Option(help: "Concurrent callers for the pipelined activation figures.")
    var activationCallers = 64

    @Option(help: "Concurrent callers for the single-node figures.")
    var localCallers = 500

    @Option(help: "Runs; the table shows the median of each figure.")
    var runs = 3

    @Option(help: "Microseconds both nodes keep their event loops polling after I/O (0, the default: off; see BusyWait).")
    var busyWaitUs = 0
}
