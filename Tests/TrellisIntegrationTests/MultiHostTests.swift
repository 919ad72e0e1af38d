import Foundation
import TrellisTestSupport
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `trellis node` processes on separate hosts: each in a network namespace of its own with an
/// address of its own, joined by a bridge (see `NetworkNamespaces`), finding each other only
/// through SRV records that dnsmasq serves on the bridge. Links are cut with `ip link` and
/// slowed with `tc netem`, as between machines. The test reaches every node's admin interface
/// from the root namespace over the bridge. Skipped where namespaces cannot be made.
final class MultiHostTests: XCTestCase {
    static let service = "_trellis._tcp.trellis.test"
    static let token = "multihost-token"
    let failureTimeoutMs = 1_000

    /// One `trellis node` on one host.
    struct Host {
        let index: Int
        let id: String
        let admin: String
        let process: NodeProcess
    }

    var network: NetworkNamespaces?
    var dnsmasq: DNSMasq?
    var hosts: [Host] = []
    /// A session per test, so no test reuses a connection to an address of an earlier one.
    let session = URLSession(configuration: .ephemeral)

    override func tearDown() {
        session.invalidateAndCancel()
        for host in hosts { host.process.stop() }
        hosts = []
        dnsmasq?.stop()
        dnsmasq = nil
        network?.remove()
        network = nil
    }

    /// Four hosts form a cluster through DNS. Host 4's link is cut: the three others' failure
    /// detectors see it go (heartbeats stop; no connection closes) within the failure timeout
    /// and some slack, and they stay a full mesh. The link comes back: within a bounded time
    /// every node counts all four again, through re-polled discovery and the overlay's retries.
    func testACutLinkIsDetectedAndTheClusterHealsWhenItComesBack() async throws {
        let network = try NetworkNamespaces(hosts: 4)
        self.network = network
        let hosts = try await startCluster(on: network)
        let everyone = Set(hosts.map(\.id))
        let (others, cut) = (Array(hosts.dropLast()), hosts[3])
        let marks = hosts.map(\.process.output.count)

        let cutAt = ContinuousClock.now
        try network.cutLink(ofHost: cut.index)
        let allowance = Duration.milliseconds(failureTimeoutMs + 1_500)
        for other in others {
            let remaining = cutAt + allowance - ContinuousClock.now
            let line = await other.process.waitForLine(timeout: remaining, after: marks[other.index - 1]) { $0 == "down \(cut.id)" }
            XCTAssertNotNil(line, "\(other.id) did not see \(cut.id) down within \(allowance): \(other.process.output)")
        }
        let detected = ContinuousClock.now - cutAt
        for other in others {
            let timeouts = try await heartbeatTimeouts(other)
            XCTAssertGreaterThanOrEqual(timeouts, 1, "\(other.id) saw the cut node go, but not by heartbeat timeout")
        }
        let alone = await cut.process.waitForLine(timeout: allowance, after: marks[3]) { $0 == "members 1 \(cut.id)" }
        XCTAssertNotNil(alone, "the cut-off node did not see the others go: \(cut.process.output)")
        try await waitForMembers(Set(others.map(\.id)), on: others, within: .seconds(3), "the others after the cut")

        let restoredAt = ContinuousClock.now
        try network.restoreLink(ofHost: cut.index)
        try await waitForMembers(everyone, on: hosts, within: .seconds(15), "every node after the link came back")
        print("multihost: down seen by all after \(detected), healed \(ContinuousClock.now - restoredAt) after the link came back")
    }

    /// Three hosts form a cluster through DNS, then every packet host 2 sends is delayed by
    /// `tc netem`. The delay shows in the admin interface's round trips, and for three failure
    /// timeouts nobody reports anybody down: latency well under the timeout is not a failure.
    func testAddedLatencyIsNoFailure() async throws {
        let network = try NetworkNamespaces(hosts: 3)
        self.network = network
        try network.requireNetem()
        let hosts = try await startCluster(on: network)
        let everyone = Set(hosts.map(\.id))
        let slow = hosts[1]
        let delay = 100
        try network.addLatency(milliseconds: delay, toHost: slow.index)
        let marks = hosts.map(\.process.output.count)

        let sentAt = ContinuousClock.now
        _ = try await members(of: slow)
        let roundTrip = ContinuousClock.now - sentAt
        XCTAssertGreaterThanOrEqual(roundTrip, .milliseconds(delay), "the admin round trip to the slowed host did not show the delay")

        try await expectNoFailureForThreeTimeouts(hosts, outputSince: marks, under: "latency")
        try await waitForMembers(everyone, on: hosts, within: .seconds(2), "every node under latency")
        print("multihost: admin round trip to the slowed host \(roundTrip) with \(delay) ms of netem delay")
    }

    /// Waits three failure timeouts, then checks that no host printed a `down` line after its
    /// output's `outputSince` mark, nor counted a heartbeat timeout, while under `condition`.
    private func expectNoFailureForThreeTimeouts(_ hosts: [Host], outputSince marks: [Int], under condition: String) async throws {
        try await Task.sleep(for: .milliseconds(3 * failureTimeoutMs))
        for host in hosts {
            let downs = host.process.output.dropFirst(marks[host.index - 1]).filter { $0.hasPrefix("down ") }
            XCTAssertEqual(downs, [], "\(host.id) took \(condition) for a failure")
            let timeouts = try await heartbeatTimeouts(host)
            XCTAssertEqual(timeouts, 0, "\(host.id) counted heartbeat timeouts under \(condition)")
        }
    }

    /// Latency on every kernel, netem or not: host 2's own fault plan holds back everything it
    /// receives (membership and heartbeat answers included) by 300 ms, a third of the failure
    /// timeout. For three failure timeouts nobody reports anybody down, and the plan's counts
    /// show that the delay was really applied.
    func testInjectedDelayIsNoFailure() async throws {
        let network = try NetworkNamespaces(hosts: 3)
        self.network = network
        let hosts = try await startCluster(on: network)
        let everyone = Set(hosts.map(\.id))
        let slow = hosts[1]
        let plan = try JSONSerialization.data(withJSONObject: ["rules": [["action": "delay", "delay_ms": 300]]])
        _ = try await admin(slow, "/faults", method: "POST", body: plan)
        let marks = hosts.map(\.process.output.count)

        try await expectNoFailureForThreeTimeouts(hosts, outputSince: marks, under: "a delay")
        let status = try JSONSerialization.jsonObject(with: try await admin(slow, "/faults")) as? [String: Any]
        let delayed = (status?["counts"] as? [String: Any])?["delayed"] as? Int ?? 0
        XCTAssertGreaterThan(delayed, 0, "the delay rule never applied: \(String(describing: status))")
        try await waitForMembers(everyone, on: hosts, within: .seconds(2), "every node under a delay")
        print("multihost: \(delayed) messages held back 300 ms on \(slow.id), nobody reported down")
    }

    /// Serves an SRV record per host from dnsmasq on the bridge, starts `trellis node` on each
    /// host with nothing but that DNS name to find the others, and waits for a full mesh.
    private func startCluster(on network: NetworkNamespaces) async throws -> [Host] {
        let indices = 1...network.hostCount
        let names = indices.map { "\(network.address(ofHost: $0)) h\($0).trellis.test" }
        let dns = try DNSMasq(
            hosts: names.joined(separator: "\n") + "\n", srv: indices.map { "\(Self.service),h\($0).trellis.test,7100" },
            address: network.switchAddress, launcher: network.launcher(in: network.switchNamespace))
        dnsmasq = dns
        for index in indices {
            let address = network.address(ofHost: index)
            let process = try NodeProcess(
                [
                    "--name", "h\(index)", "--listen", "\(address):7100", "--cluster", "multihost",
                    "--overlay", NodeProcessTests.fullMesh, "--failure-timeout", "\(failureTimeoutMs)",
                    "--discovery", "dns-srv:\(Self.service)", "--dns-server", dns.server, "--discovery-interval", "200",
                    "--admin", "\(address):7180", "--admin-token", Self.token,
                ], launcher: network.launcher(in: network.namespace(ofHost: index)))
            let host = Host(index: index, id: try await process.id(), admin: "\(address):7180", process: process)
            hosts.append(host)
            XCTAssertEqual(host.id, "h\(index)@\(address):7100", "a node's id must be what its SRV record says")
        }
        let formedAt = ContinuousClock.now
        try await waitForMembers(Set(hosts.map(\.id)), on: hosts, within: .seconds(10), "formation through DNS")
        print("multihost: \(hosts.count) hosts formed a full mesh through DNS in \(ContinuousClock.now - formedAt)")
        return hosts
    }

    /// Waits until every one of `hosts` reports exactly `expected` as its members.
    private func waitForMembers(_ expected: Set<String>, on hosts: [Host], within limit: Duration, _ what: String) async throws {
        let deadline = ContinuousClock.now + limit
        var seen: [Set<String>?] = []
        repeat {
            seen = []
            for host in hosts { seen.append(try? await members(of: host)) }
            if seen.allSatisfy({ $0 == expected }) { return }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
        let report = zip(hosts, seen).map { host, members in
            "\(host.id) sees \(members.map { $0.sorted().description } ?? "nothing (unreachable)")"
        }
        XCTFail("\(what): not all of \(expected.sorted()) within \(limit); \(report.joined(separator: "; "))")
        throw CancellationError()
    }

    /// The members a node's admin interface reports (`GET /status`).
    private func members(of host: Host) async throws -> Set<String> {
        let status = try JSONSerialization.jsonObject(with: try await admin(host, "/status")) as? [String: Any]
        return Set(status?["members"] as? [String] ?? [])
    }

    /// How many peers a node's failure detector reported down because their heartbeats
    /// stopped (`trellis_failure_detections_total{reason="heartbeat_timeout"}`).
    private func heartbeatTimeouts(_ host: Host) async throws -> Double {
        let metrics = String(decoding: try await admin(host, "/metrics"), as: UTF8.self)
        return metrics.split(separator: "\n")
            .filter { $0.hasPrefix("trellis_failure_detections_total{") && $0.contains("reason=\"heartbeat_timeout\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0, +)
    }

    /// The body of a request to a node's admin interface, over the bridge; fails unless it is 200.
    private func admin(_ host: Host, _ path: String, method: String = "GET", body: Data? = nil) async throws -> Data {
        var request = URLRequest(url: URL(string: "http://\(host.admin)\(path)")!, timeoutInterval: 2)
        request.httpMethod = method
        request.httpBody = body
        request.setValue("Bearer \(Self.token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200 else { throw AdminFailure(host: host.id, path: path, status: status) }
        return data
    }

    struct AdminFailure: Error {
        let host: String
        let path: String
        let status: Int
    }
}
