import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Trellis
import TrellisTransport
import TrellisWire

/// The receiving side of the benchmarks: counts messages that arrive on the default channel,
/// answers requests (`"count"`, `"reset"`, anything else is echoed) and serves the
/// process benchmarks' capabilities.
struct ServeBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the receiving node (started by `run`).")

    @Option(help: "The shared cookie.")
    var cookie: String

    @Option(help: "The overlay script both nodes run.")
    var overlay = "plugins/overlays/full_mesh.lua"

    @Option(help: "The Lua actor the node serves.")
    var actor = "plugins/actors/counter.lua"

    @Flag(help: "Export metrics to Prometheus (default: swift-metrics' no-op backend).")
    var prometheus = false

    @Option(help: "Microseconds the node keeps its event loops polling after I/O (0, the default: off; see BusyWait).")
    var busyWaitUs = 0

    func run() async throws {
        if prometheus { BenchMetrics.bootstrapPrometheus() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var configuration = try NodeConfiguration(name: "bench_b", clusterName: "bench", cookie: cookie, overlayPath: overlay)
        configuration.busyWait = BusyWait(window: .microseconds(busyWaitUs))
        let node = try await TrellisNode.start(configuration, group: group)
        let received = ReceivedCounter()
        await node.serve(BenchCapability.swift, with: BenchCounter())
        try await node.serveActor(contentsOf: actor)
        node.onRequest { message, responder in
            switch message.payload {
            case .value("count"): responder.reply(.int(Int64(received.count.load(ordering: .relaxed))))
            case .value("reset"):
                received.count.store(0, ordering: .relaxed)
                responder.reply(.nil)
            case .value(let value): responder.reply(value)
            case .bytes: responder.reply(.nil)
            }
        }
        emit("ready \(node.id)")
        for await _ in node.messages { received.count.add(1, ordering: .relaxed) }
    }
}

/// Messages received so far, shared between the consuming task and the request handler.
final class ReceivedCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// Writes a line to standard output at once (the parent reads it through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
