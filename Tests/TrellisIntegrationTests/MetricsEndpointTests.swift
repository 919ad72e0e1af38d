import Foundation
import Metrics
import NIOPosix
import Prometheus
import Trellis
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `GET /metrics` of the admin interface over real HTTP on 127.0.0.1, fed by two nodes that
/// exchange messages, calls, swaps and faults. Each node has a registry of its own, so no
/// process-wide metrics backend is bootstrapped.
final class MetricsEndpointTests: XCTestCase {
    func testMetricsEndpointShowsTrafficMembershipScriptsAndProcessCalls() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let registries = [PrometheusCollectorRegistry(), PrometheusCollectorRegistry()]
        var nodes: [TrellisNode] = []
        for (index, registry) in registries.enumerated() {
            var configuration = try NodeConfiguration(
                name: "m\(index + 1)", clusterName: "metrics", cookie: "c", overlayPath: ProcessTests.fullMesh)
            configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)
            let node = try await TrellisNode.start(configuration, group: group)
            try await node.serveActor(contentsOf: ProcessTests.counterActor)
            if let seed = nodes.first { await node.join(seed.id) }
            nodes.append(node)
        }
        let (m1, m2) = (nodes[0], nodes[1])
        let admin = try await AdminServer.start(node: m1, port: 0, token: "t0ken", group: group, metrics: registries[0])
        let bare = try await AdminServer.start(node: m2, port: 0, token: "t0ken", group: group)
        try await eventually("both nodes serve counter") {
            [m1, m2].allSatisfy { Set($0.shardTable(for: "counter")?.owners ?? []).count == 2 }
        }

        try await m2.injectFaults(FaultPlan(rules: [FaultRule(.duplicate, channel: "default")]))
        for index in 0..<100 { try await m1.send(.int(Int64(index)), to: m2.id) }
        for id in 0..<20 { _ = try await m1.call("counter", id: "c\(id)", .map(["op": "add"])) }
        _ = try await m1.swapOverlay(source: HotSwapTests.fullMesh(version: 2), fileName: "full_mesh.lua")
        _ = try? await m1.swapOverlay(source: "return 42", fileName: "bad.lua")

        let (refused, _) = try await get("http://\(admin.address)/metrics", token: nil)
        XCTAssertEqual(refused, 401, "no token, no metrics")
        let (wrong, _) = try await get("http://\(admin.address)/metrics", token: "nope")
        XCTAssertEqual(wrong, 401)
        let (absent, why) = try await get("http://\(bare.address)/metrics", token: "t0ken")
        XCTAssertEqual(absent, 404, why)

        let me = ["node": m1.id.description]
        var samples: [Sample] = []
        try await eventually("m1 counted the messages it sent") {
            samples = try await self.scrape(admin)
            return value(samples, "trellis_transport_messages_sent_total", ["channel": "default"] + me) >= 100
        }
        XCTAssertGreaterThan(value(samples, "trellis_transport_bytes_sent_total", ["channel": "default"] + me), 100 * 2)
        XCTAssertGreaterThan(value(samples, "trellis_transport_messages_received_total", ["channel": "membership"] + me), 0)
        XCTAssertGreaterThan(value(samples, "trellis_transport_bytes_received_total", ["channel": "processes"] + me), 0)
        XCTAssertEqual(value(samples, "trellis_transport_connections", ["channel": "default", "direction": "outbound"] + me), 1)
        XCTAssertEqual(value(samples, "trellis_members", me), 2)
        XCTAssertEqual(value(samples, "trellis_member_changes_total", ["change": "up"] + me), 1)
        XCTAssertGreaterThan(value(samples, "trellis_process_calls_total", ["kind": "call", "route": "served"] + me), 0)
        XCTAssertEqual(value(samples, "trellis_hot_swaps_total", ["kind": "overlay", "outcome": "ok"] + me), 1)
        XCTAssertEqual(value(samples, "trellis_hot_swaps_total", ["kind": "overlay", "outcome": "refused"] + me), 1)
        XCTAssertGreaterThan(
            value(samples, "trellis_script_callback_duration_seconds_count", ["kind": "overlay", "callback": "on_message"] + me), 0)
        XCTAssertGreaterThan(
            value(samples, "trellis_script_callback_duration_seconds_count", ["kind": "actor", "callback": "handle_call"] + me), 0)
        XCTAssertEqual(value(samples, "trellis_script_errors_total", ["kind": "actor", "callback": "handle_call"] + me), 0)
        let them = ["node": m2.id.description]
        try await eventually("m2 judged every message under its fault plan") {
            value(Self.parse(registries[1].emitToString()), "trellis_fault_verdicts_total", ["verdict": "duplicate"] + them) == 100
        }
        let m2Samples = Self.parse(registries[1].emitToString())
        XCTAssertGreaterThanOrEqual(value(m2Samples, "trellis_transport_messages_received_total", ["channel": "default"] + them), 100)

        await m2.stop()
        try await eventually("m1 saw m2's connection go") {
            samples = try await self.scrape(admin)
            return value(samples, "trellis_failure_detections_total", ["reason": "connection_lost"] + me) >= 1
                && value(samples, "trellis_members", me) == 1
        }
        XCTAssertEqual(value(samples, "trellis_member_changes_total", ["change": "down"] + me), 1)
        await bare.stop()
        await admin.stop()
        await m1.stop()
        try await group.shutdownGracefully()
    }

    // MARK: Helpers

    /// One line of the text format: a series and its value.
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    private func scrape(_ admin: AdminServer) async throws -> [Sample] {
        let (status, text) = try await get("http://\(admin.address)/metrics", token: "t0ken")
        XCTAssertEqual(status, 200, text)
        return Self.parse(text)
    }

    /// Parses `name{a="x",b="y"} value` lines; comments and blank lines are skipped.
    static func parse(_ text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...])
            else { return nil }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)...].dropLast().split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    private func get(_ url: String, token: String?) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// Polls `condition` every 50 ms, failing after 10 s.
    private func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<200 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("timed out waiting until \(what)")
    }
}

/// The value of the series `name` whose labels include `labels`; 0 when there is none.
private func value(_ samples: [MetricsEndpointTests.Sample], _ name: String, _ labels: [String: String]) -> Double {
    samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value ?? 0
}

private func + (lhs: [String: String], rhs: [String: String]) -> [String: String] {
    lhs.merging(rhs) { $1 }
}
