import Foundation
import Trellis
import TrellisWire

/// A counter per id, the process the process benchmarks activate and call.
struct BenchCounter: ProcessBehavior {
    func activate(id: String) throws -> Int64 { 0 }

    func handleCall(_ payload: Value, state: inout Int64, id: String, from: PeerID) throws -> Value {
        state += 1
        return .int(state)
    }
}

/// Capabilities the benchmark server serves.
enum BenchCapability {
    /// Swift processes (`BenchCounter`).
    static let swift = "bench_counter"
    /// Lua actors (`plugins/actors/counter.lua`).
    static let lua = "counter"
    /// What a call sends: Lua's counter takes `{op = "add"}`, the Swift one anything.
    static func payload(for capability: String) -> Value { capability == lua ? .map(["op": "add"]) : .nil }
    /// Swift processes served by the measuring node itself, for the single-node figures.
    static let local = "local_counter"
}

/// Resident bytes of this process (`/proc/self/statm`); 0 where there is no procfs.
func residentBytes() -> Int {
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = statm.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// Lazy activation and calls to processes, against a server node that owns every shard.
struct ProcessBenchmarks {
    let node: TrellisNode
    let server: PeerID

    /// Waits until this node routes `capability` to the server.
    func awaitPlacement(_ capability: String) async throws {
        for _ in 0..<500 {
            if node.shardTable(for: capability)?.owners.allSatisfy({ $0 == server }) == true { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw BenchFailure("no shard table for \(capability) after 5 s: is the server serving it?")
    }

    /// Activates `count` fresh processes of `capability` on the server (one call each), then
    /// calls each once more: sequentially from one caller, then with `callers` callers, all
    /// on the event loop of the connection to the server (`withAffinity`).
    func activations(_ capability: String, count: Int, callers: Int, name: String, run: Int) async throws -> [String: Double] {
        var figures: [String: Double] = [:]
        let sequentialIDs = (0..<count).map { "\(name)-r\(run)-s\($0)" }
        figures["\(name)_act_seq_per_s"] = try await sequential(capability, sequentialIDs)
        figures["\(name)_call_each_seq_per_s"] = try await sequential(capability, sequentialIDs)
        let concurrentIDs = (0..<count).map { "\(name)-r\(run)-c\($0)" }
        let (activations, calls) = try await node.withAffinity(to: server, channel: .processes) {
            (try await concurrent(capability, concurrentIDs, callers: callers), try await concurrent(capability, concurrentIDs, callers: callers))
        }
        figures["\(name)_act_conc_per_s"] = activations
        figures["\(name)_call_each_conc_per_s"] = calls
        return figures
    }

    /// The single-node figures: `callers` callers activating `count` processes this node
    /// serves itself, then calling each once more.
    func singleNode(count: Int, callers: Int, run: Int) async throws -> [String: Double] {
        let ids = (0..<count).map { "local-r\(run)-\($0)" }
        return [
            "local_act_per_s": try await concurrent(BenchCapability.local, ids, callers: callers),
            "local_call_per_s": try await concurrent(BenchCapability.local, ids, callers: callers),
        ]
    }

    private func sequential(_ capability: String, _ ids: [String]) async throws -> Double {
        let node = self.node
        let payload = BenchCapability.payload(for: capability)
        return try await node.withAffinity(to: server, channel: .processes) {
            let start = ContinuousClock.now
            for id in ids { _ = try await node.call(capability, id: id, payload) }
            return Double(ids.count) / (ContinuousClock.now - start).seconds
        }
    }

    private func concurrent(_ capability: String, _ ids: [String], callers: Int) async throws -> Double {
        let node = self.node
        let payload = BenchCapability.payload(for: capability)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    for index in stride(from: caller, to: ids.count, by: callers) {
                        _ = try await node.call(capability, id: ids[index], payload)
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(ids.count) / (ContinuousClock.now - start).seconds
    }
}

/// A benchmark that could not run, with what to check.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
