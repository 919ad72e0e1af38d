import ArgumentParser
import Foundation
import NIOPosix
import Trellis
import TrellisWire

/// `TrellisBench memory`: what an idle process costs, measured in a fresh process so that
/// nothing else has touched the heap: the growth of resident memory while one node activates
/// `processes` Swift processes and then as many Lua actor processes, all kept active.
/// `run` starts it as a child process and reads its `RESULT` lines.
struct MemoryBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "memory", abstract: "Memory per idle process.")

    @Option(help: "Processes to activate of each kind.")
    var processes = 200_000

    @Option(help: "The Lua actor to activate.")
    var actor = "plugins/actors/counter.lua"

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var configuration = try NodeConfiguration(
            name: "memory", clusterName: "memory", cookie: UUID().uuidString, overlayPath: "plugins/overlays/static.lua")
        configuration.scriptLimits.memoryCap = 1 << 30
        let node = try await TrellisNode.start(configuration, group: group)
        await node.serve(BenchCapability.swift, with: BenchCounter())
        try await node.serveActor(contentsOf: actor)
        for capability in [BenchCapability.swift, BenchCapability.lua] {
            while node.shardTable(for: capability) == nil { try await Task.sleep(for: .milliseconds(5)) }
            _ = try await node.call(capability, id: "warm-up", BenchCapability.payload(for: capability))
        }
        for (name, capability) in [("swift", BenchCapability.swift), ("lua", BenchCapability.lua)] {
            let before = residentBytes()
            let payload = BenchCapability.payload(for: capability)
            for index in 0..<processes { _ = try await node.call(capability, id: "\(name)-\(index)", payload) }
            let after = residentBytes()
            let active = await node.activeProcesses(of: capability)
            guard active == processes + 1 else { throw BenchFailure("\(active) \(name) processes active, expected \(processes + 1)") }
            print("RESULT \(name)_bytes_per_process \(Double(after - before) / Double(processes))")
        }
        await node.stop()
        try await group.shutdownGracefully()
    }
}
