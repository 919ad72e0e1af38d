import Foundation

/// Medians of `RESULT name value` lines in the anchors' logs.
struct AnchorResults {
    var disterl: [String: Double] = [:]
    var loopback: [String: Double] = [:]

    init(disterlLog: String?, loopbackLog: String?) {
        disterl = disterlLog.map(Self.medians) ?? [:]
        loopback = loopbackLog.map(Self.medians) ?? [:]
        if let bytes = disterlLog.flatMap(Self.bytesPerActivation) { disterl["e1_bytes_per_process"] = bytes }
    }

    /// Node B's memory growth per process in the activation run (`e1. activate N ids ...: B mem +X MB`).
    static func bytesPerActivation(ofLog path: String) -> Double? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let perProcess: [Double] = text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("e1. activate "), let mem = line.range(of: "B mem +") else { return nil }
            let fields = line.dropFirst("e1. activate ".count).split(separator: " ")
            let megabytes = line[mem.upperBound...].split(separator: " ").first.flatMap { Double($0) }
            guard let count = fields.first.flatMap({ Double($0) }), let megabytes else { return nil }
            return megabytes * 1e6 / count
        }
        return perProcess.isEmpty ? nil : median(perProcess)
    }

    static func medians(ofLog path: String) -> [String: Double] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var samples: [String: [Double]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("RESULT ") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let value = Double(fields[2]) else { continue }
            samples[String(fields[1]), default: []].append(value)
        }
        return samples.mapValues(median)
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

/// The table of medians: Trellis beside distributed Erlang (ratio and target) and the C limit.
struct ResultTable {
    let trellisRuns: [[String: Double]]
    let anchors: AnchorResults

    /// What a figure must reach: a multiple of the comparison figure, or an absolute value.
    private enum Target {
        case ratio(Double)
        case atLeast(Double)

        func verdict(ours: Double, ratio: Double?) -> String {
            switch self {
            case .ratio(let target):
                guard let ratio else { return "" }
                return ratio >= target ? "≥\(ResultTable.format(target))× ok" : "≥\(ResultTable.format(target))× MISSED"
            case .atLeast(let target):
                return ours >= target ? "≥\(ResultTable.format(target)) ok" : "≥\(ResultTable.format(target)) MISSED"
            }
        }
    }

    private struct Row {
        let figure: String
        let trellis: String
        let disterl: String?
        let target: Target?
        let higherIsBetter: Bool
        let loopback: String?
        /// A published figure to compare with instead of an anchor (Mesh's own numbers).
        var published: Double? = nil
    }

    private let rows: [Row] = [
        Row(figure: "one-way small msgs/s", trellis: "small_msgs_per_s", disterl: "a_async_small_msgs_per_s", target: .ratio(10), higherIsBetter: true, loopback: "stream_batched_msgs_per_s"),
        Row(figure: "one-way 1 KiB msgs/s", trellis: "1k_msgs_per_s", disterl: "b_async_1k_msgs_per_s", target: .ratio(3), higherIsBetter: true, loopback: nil),
        Row(figure: "1 KiB payload MB/s", trellis: "1k_MB_per_s", disterl: "b_async_1k_MB_per_s", target: .atLeast(1_000), higherIsBetter: true, loopback: "stream_batched_wire_MB_per_s"),
        Row(figure: "one-way 1 KiB raw bytes msgs/s", trellis: "raw1k_msgs_per_s", disterl: "b_async_1k_msgs_per_s", target: .ratio(3), higherIsBetter: true, loopback: nil),
        Row(figure: "1 KiB raw bytes MB/s", trellis: "raw1k_MB_per_s", disterl: "b_async_1k_MB_per_s", target: .atLeast(1_000), higherIsBetter: true, loopback: "stream_batched_wire_MB_per_s"),
        Row(figure: "sequential calls/s", trellis: "call_seq_per_s", disterl: "c_call_seq_calls_per_s", target: .ratio(2), higherIsBetter: true, loopback: "pingpong_rtt_per_s"),
        Row(figure: "sequential call p50 µs", trellis: "call_seq_p50_us", disterl: "c_call_seq_p50_us", target: nil, higherIsBetter: false, loopback: "pingpong_p50_us"),
        Row(figure: "sequential call p99 µs", trellis: "call_seq_p99_us", disterl: "c_call_seq_p99_us", target: nil, higherIsBetter: false, loopback: "pingpong_p99_us"),
        Row(figure: "16 concurrent callers calls/s", trellis: "call_conc_per_s", disterl: "d_call_conc16_calls_per_s", target: .ratio(5), higherIsBetter: true, loopback: nil),
        Row(figure: "16 callers, 2 connections calls/s", trellis: "call_conc2_per_s", disterl: "d_call_conc16_calls_per_s", target: .ratio(5), higherIsBetter: true, loopback: nil),
        Row(figure: "remote activations/s, 1 caller", trellis: "swift_act_seq_per_s", disterl: "e1_activate_per_s", target: .ratio(10), higherIsBetter: true, loopback: nil),
        Row(figure: "remote activations/s, 64 callers", trellis: "swift_act_conc_per_s", disterl: "e1_activate_per_s", target: .ratio(10), higherIsBetter: true, loopback: nil),
        Row(figure: "call each process/s, 1 caller", trellis: "swift_call_each_seq_per_s", disterl: "e2_call_each_calls_per_s", target: .ratio(2), higherIsBetter: true, loopback: nil),
        Row(figure: "call each process/s, 64 callers", trellis: "swift_call_each_conc_per_s", disterl: "e2_call_each_calls_per_s", target: .ratio(2), higherIsBetter: true, loopback: nil),
        Row(figure: "bytes per idle process", trellis: "swift_bytes_per_process", disterl: "e1_bytes_per_process", target: .ratio(2.9), higherIsBetter: false, loopback: nil),
        Row(figure: "Lua: remote activations/s, 1 caller", trellis: "lua_act_seq_per_s", disterl: "e1_activate_per_s", target: nil, higherIsBetter: true, loopback: nil),
        Row(figure: "Lua: remote activations/s, 64 callers", trellis: "lua_act_conc_per_s", disterl: "e1_activate_per_s", target: nil, higherIsBetter: true, loopback: nil),
        Row(figure: "Lua: call each process/s, 1 caller", trellis: "lua_call_each_seq_per_s", disterl: "e2_call_each_calls_per_s", target: nil, higherIsBetter: true, loopback: nil),
        Row(figure: "Lua: call each process/s, 64 callers", trellis: "lua_call_each_conc_per_s", disterl: "e2_call_each_calls_per_s", target: nil, higherIsBetter: true, loopback: nil),
        Row(figure: "Lua: bytes per idle process", trellis: "lua_bytes_per_process", disterl: "e1_bytes_per_process", target: nil, higherIsBetter: false, loopback: nil),
        Row(figure: "1 node, 500 callers: creations/s", trellis: "local_act_per_s", disterl: nil, target: .ratio(10), higherIsBetter: true, loopback: nil, published: 16_400),
        Row(figure: "1 node, 500 callers: calls/s", trellis: "local_call_per_s", disterl: nil, target: .ratio(10), higherIsBetter: true, loopback: nil, published: 30_500),
    ]

    func render() -> String {
        let header = ["figure", "Trellis", "dist. Erlang", "ratio", "target", "C loopback"]
        var table = [header]
        for row in rows {
            let measured = trellisRuns.compactMap { $0[row.trellis] }
            guard !measured.isEmpty else { continue }
            let ours = median(measured)
            let theirs = row.published ?? row.disterl.flatMap { anchors.disterl[$0] }
            let ratio = theirs.map { row.higherIsBetter ? ours / $0 : $0 / ours }
            let verdict = row.target?.verdict(ours: ours, ratio: ratio) ?? ""
            table.append([
                row.figure, Self.format(ours), theirs.map(Self.format) ?? "not run", ratio.map { Self.format($0) + "×" } ?? "",
                verdict, row.loopback.flatMap { anchors.loopback[$0] }.map(Self.format) ?? "",
            ])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        let lines = table.map { cells in
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " | ")
        }
        return ([lines[0], widths.map { String(repeating: "-", count: $0) }.joined(separator: "-|-")] + lines.dropFirst())
            .joined(separator: "\n")
            + "\n(medians of \(trellisRuns.count) run(s); ratio = Trellis / Erlang, inverted for latencies so higher is better;"
            + "\n one-way senders and sequential callers run on the connection's event loop via TrellisNode.withAffinity;"
            + "\n 1 KiB messages are Value.bytes (MessagePack bin), raw bytes go by send(bytes:) and arrive as a buffer slice;"
            + "\n with 2 connections, half the callers use each connection of a channel of parallelism 2, on its loop;"
            + "\n Erlang's activations are made by one caller; the 1-node rows compare with Mesh's published figures;"
            + "\n bytes per idle process: resident memory growth of a fresh node over 200k activations, target ≤ 1 KB)"
    }

    fileprivate static func format(_ value: Double) -> String {
        guard value.isFinite else { return "n/a" }
        if value >= 10_000 { return String(format: "%.0fk", value / 1_000) }
        if value >= 1_000 { return String(format: "%.1fk", value / 1_000) }
        return String(format: value >= 10 ? "%.0f" : "%.2f", value)
    }
}

