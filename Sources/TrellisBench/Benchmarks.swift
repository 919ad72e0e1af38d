import Foundation
import Trellis
import TrellisTransport
import TrellisWire

/// The measurements, each returning named figures (rates per second, latencies in µs).
struct Benchmarks {
    let node: TrellisNode
    let server: PeerID

    func warmUp() async throws {
        _ = try await oneWay(count: 20_000, payload: .value("warm"), name: "warm")
        _ = try await sequentialCalls(count: 2_000)
    }

    /// What a one-way benchmark sends: a value (`send(_:to:)`) or raw bytes (`send(bytes:to:)`,
    /// delivered as `Payload.bytes`, a slice of the receive buffer).
    enum OneWayPayload: Sendable {
        case value(Value)
        case bytes([UInt8])
    }

    /// Sends `count` messages from the connection's event loop (`withAffinity`: one thread
    /// encodes and writes), then asks the server until it has received them all.
    func oneWay(count: Int, payload: OneWayPayload, name: String) async throws -> [String: Double] {
        let node = self.node, server = self.server
        _ = try await node.request("reset", to: server)
        let start = ContinuousClock.now
        try await node.withAffinity(to: server) {
            switch payload {
            case .value(let value): for _ in 0..<count { try await node.send(value, to: server) }
            case .bytes(let bytes): for _ in 0..<count { try await node.send(bytes: bytes, to: server) }
            }
        }
        while true {
            let received = try await node.request("count", to: server).intValue ?? 0
            if received >= count { break }
            try await Task.sleep(for: .microseconds(200))
        }
        let seconds = (ContinuousClock.now - start).seconds
        var figures = ["\(name)_msgs_per_s": Double(count) / seconds]
        switch payload {
        case .bytes(let bytes), .value(.bytes(let bytes)): figures["\(name)_MB_per_s"] = Double(count * bytes.count) / seconds / 1e6
        case .value: break
        }
        return figures
    }

    /// One caller, one request at a time.
    func sequentialCalls(count: Int) async throws -> [String: Double] {
        let node = self.node
        let server = self.server
        return try await node.withAffinity(to: server) { try await Self.sequentialCalls(count: count, node: node, server: server) }
    }

    private static func sequentialCalls(count: Int, node: TrellisNode, server: PeerID) async throws -> [String: Double] {
        var latencies: [Double] = []
        latencies.reserveCapacity(count)
        let start = ContinuousClock.now
        for i in 0..<count {
            let sent = ContinuousClock.now
            _ = try await node.request(.int(Int64(i)), to: server)
            latencies.append((ContinuousClock.now - sent).seconds * 1e6)
        }
        let seconds = (ContinuousClock.now - start).seconds
        latencies.sort()
        return [
            "call_seq_per_s": Double(count) / seconds,
            "call_seq_p50_us": latencies[latencies.count / 2],
            "call_seq_p99_us": latencies[latencies.count * 99 / 100],
        ]
    }

    /// `callers` concurrent callers sharing `count` calls, on the connection's event loop.
    func concurrentCalls(count: Int, callers: Int) async throws -> [String: Double] {
        let seconds = try await Self.callers(count: count, callers: callers, node: node, server: server, lanes: [(.default, nil)])
        return ["call_conc_per_s": Double(count / callers * callers) / seconds]
    }

    /// The same callers split between the two connections of `BenchChannel.twoLanes`, each
    /// half on its connection's event loop.
    func concurrentCallsOnTwoConnections(count: Int, callers: Int) async throws -> [String: Double] {
        let keys = BenchChannel.keysOnSeparateLanes
        let lanes = keys.map { (BenchChannel.twoLanes, Optional($0)) }
        let seconds = try await Self.callers(count: count, callers: callers, node: node, server: server, lanes: lanes)
        return ["call_conc2_per_s": Double(count / callers * callers) / seconds]
    }

    /// Runs `callers` callers making `count` calls in all, caller `c` on lane `c % lanes.count`
    /// (a channel and the key that picks its connection), on that connection's event loop.
    /// Returns the seconds taken.
    private static func callers(
        count: Int, callers: Int, node: TrellisNode, server: PeerID, lanes: [(channel: ChannelName, key: String?)]
    ) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                let (channel, key) = lanes[caller % lanes.count]
                group.addTask {
                    try await node.withAffinity(to: server, channel: channel, key: key) {
                        for i in 0..<(count / callers) {
                            _ = try await node.request(.int(Int64(caller * count + i)), to: server, channel: channel, key: key)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        return (ContinuousClock.now - start).seconds
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The channel of the two-connection caller figure: two TCP connections to the server, each
/// served by its own event loop on both sides.
enum BenchChannel {
    static let twoLanes: ChannelName = "calls2"
    static let settings = ChannelSettings(parallelism: 2)

    /// One key per connection of `twoLanes`.
    static var keysOnSeparateLanes: [String] {
        let keys = (0..<64).map { "lane\($0)" }
        let lanes = keys.map { settings.connection(forKey: $0) }
        return (0..<settings.parallelism).compactMap { lane in keys.indices.first { lanes[$0] == lane }.map { keys[$0] } }
    }
}
