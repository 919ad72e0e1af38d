import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Trellis
import TrellisTransport
import TrellisWire

/// The sending side: starts `serve` as a second process, measures, prints the table.
struct RunBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the benchmarks and print the table.")

    @OptionGroup var sizes: BenchSizes

    @Option(help: "The overlay script both nodes run.")
    var overlay = "plugins/overlays/full_mesh.lua"

    @Option(help: "A log of ../shared/anchors/disterl/run.sh from this session (RESULT lines).")
    var disterl: String?

    @Option(help: "A log of ../shared/anchors/loopback/run.sh from this session (RESULT lines).")
    var loopback: String?

    @Flag(help: "Export metrics to Prometheus in both processes (default: swift-metrics' no-op backend).")
    var prometheus = false

    @Flag(help: "Measure messaging only: one-way messages and calls, without processes or memory.")
    var messagingOnly = false

    func run() async throws {
        let cookie = UUID().uuidString
        if prometheus { BenchMetrics.bootstrapPrometheus() }
        let server = try ServerProcess(cookie: cookie, overlay: overlay, prometheus: prometheus, busyWaitUs: sizes.busyWaitUs)
        defer { server.terminate() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        var configuration = try NodeConfiguration(name: "bench_a", clusterName: "bench", cookie: cookie, overlayPath: overlay)
        configuration.channels[BenchChannel.twoLanes] = BenchChannel.settings
        configuration.busyWait = BusyWait(window: .microseconds(sizes.busyWaitUs))
        let node = try await TrellisNode.start(configuration, group: group)
        await node.serve(BenchCapability.local, with: BenchCounter())
        await node.join(server.id)
        let bench = Benchmarks(node: node, server: server.id)
        do {
            try await measure(bench, processes: ProcessBenchmarks(node: node, server: server.id), node: node)
        } catch {
            throw ValidationError("\(error)\(server.exitReport)")
        }
    }

    private func measure(_ bench: Benchmarks, processes: ProcessBenchmarks, node: TrellisNode) async throws {
        try await bench.warmUp()
        if !messagingOnly {
            try await processes.awaitPlacement(BenchCapability.swift)
            try await processes.awaitPlacement(BenchCapability.lua)
        }
        var runs: [[String: Double]] = []
        for run in 1...sizes.runs {
            print("run \(run)/\(sizes.runs)")
            var results: [String: Double] = [:]
            results.merge(try await bench.oneWay(count: sizes.small, payload: .value(.array([.string("msg"), .int(1 << 40)])), name: "small"), uniquingKeysWith: { $1 })
            results.merge(try await bench.oneWay(count: sizes.large, payload: .value(.bytes([UInt8](repeating: 7, count: 1024))), name: "1k"), uniquingKeysWith: { $1 })
            results.merge(try await bench.oneWay(count: sizes.large, payload: .bytes([UInt8](repeating: 7, count: 1024)), name: "raw1k"), uniquingKeysWith: { $1 })
            results.merge(try await bench.sequentialCalls(count: sizes.calls), uniquingKeysWith: { $1 })
            results.merge(try await bench.concurrentCalls(count: sizes.concurrentCalls, callers: sizes.callers), uniquingKeysWith: { $1 })
            results.merge(try await bench.concurrentCallsOnTwoConnections(count: sizes.concurrentCalls, callers: sizes.callers), uniquingKeysWith: { $1 })
            if !messagingOnly {
                results.merge(try await measureProcesses(processes, run: run), uniquingKeysWith: { $1 })
            }
            for (key, value) in results.sorted(by: { $0.key < $1.key }) { print("RESULT \(key) \(value)") }
            runs.append(results)
        }
        await node.stop()
        if !messagingOnly {
            let memory = try MemoryProcess.measure()
            runs = runs.map { $0.merging(memory) { $1 } }
        }
        let anchors = AnchorResults(disterlLog: disterl, loopbackLog: loopback)
        print()
        print(ResultTable(trellisRuns: runs, anchors: anchors).render())
    }

    private func measureProcesses(_ processes: ProcessBenchmarks, run: Int) async throws -> [String: Double] {
        var results: [String: Double] = [:]
        let (activations, callers) = (sizes.activations, sizes.activationCallers)
        results.merge(try await processes.activations(BenchCapability.swift, count: activations, callers: callers, name: "swift", run: run), uniquingKeysWith: { $1 })
        results.merge(try await processes.activations(BenchCapability.lua, count: activations, callers: callers, name: "lua", run: run), uniquingKeysWith: { $1 })
        results.merge(try await processes.singleNode(count: activations, callers: sizes.localCallers, run: run), uniquingKeysWith: { $1 })
        return results
    }
}

/// `TrellisBench memory` as a child process, on a heap nothing else has used.
enum MemoryProcess {
    static func measure() throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["memory"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var figures: [String: Double] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("RESULT ") {
            let fields = line.split(separator: " ")
            if fields.count == 3, let value = Double(fields[2]) { figures[String(fields[1])] = value }
            print(line)
        }
        guard !figures.isEmpty else { throw BenchFailure("the memory benchmark printed no result: \(output)") }
        return figures
    }
}

/// The `serve` side as a child process.
struct ServerProcess {
    let process: Process
    let id: PeerID

    init(cookie: String, overlay: String, prometheus: Bool, busyWaitUs: Int) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["serve", "--cookie", cookie, "--overlay", overlay, "--busy-wait-us", "\(busyWaitUs)"] + (prometheus ? ["--prometheus"] : [])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = pipe.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw ValidationError("the serve process exited before it was ready") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("ready ") else { throw ValidationError("unexpected output from serve: \(text)") }
        id = try PeerID(parsing: String(text.dropFirst("ready ".count)))
    }

    /// How the serve process ended, if it has.
    var exitReport: String {
        guard !process.isRunning else { return "" }
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal" : "exited with status"
        return "; the serve process \(how) \(process.terminationStatus)"
    }

    func terminate() {
        process.terminate()
        process.waitUntilExit()
    }
}
