#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// One node under a combined attack (a connection flood, slow senders before and after the
/// handshake, garbage) keeps answering a healthy peer promptly, and closes every attacking
/// connection.
final class AttackLatencyTests: XCTestCase {
    /// Far above what a healthy loopback request takes even on a loaded 2-core box (a few ms),
    /// far below what a blocked event loop causes (the attack's timeouts are 1 s).
    private static let p99Bound: Duration = .milliseconds(250)

    func testHealthyPeerKeepsItsLatencyDuringAnAttack() async throws {
        let floodSize = Self.floodSize(wanted: 500)
        try XCTSkipIf(floodSize < 200, "ulimit -n is too low for a flood of 200 connections")
        let nodes = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let attackers = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try await TestNode.start("a", group: nodes)
        let b = try await TestNode.start("b", group: nodes) {
            $0.handshakeTimeout = .seconds(1)
            $0.limits.frameCompletionTimeout = .seconds(1)
        }
        _ = try await pings(from: a, to: b, for: .milliseconds(300))
        let quiet = try await pings(from: a, to: b, for: .milliseconds(700))

        let attack = Task { [b] in try await AttackLatencyTests.attack(b, floodSize: floodSize, group: attackers) }
        let loaded = try await pings(from: a, to: b, for: .milliseconds(2_500))
        let attacking = try await attack.value

        await waitUntil("every attacking connection is closed", timeout: .seconds(3)) {
            attacking.all.allSatisfy { !$0.channel.isActive }
        }
        var refused = 0
        for peer in attacking.flood {
            if case .reject(let reason)? = try? await peer.nextFrame(timeout: .zero),
               reason["reason"]?.stringValue?.contains("(maxPendingHandshakesPerHost)") ?? false {
                refused += 1
            }
        }
        // The held ones free their slots after the handshake timeout (1 s); on a loaded box the
        // flood's connects can straddle that, so allow the slots to fill twice.
        XCTAssertGreaterThanOrEqual(
            refused, attacking.flood.count - 2 * ConnectionLimits().maxPendingHandshakesPerHost,
            "the flood beyond maxPendingHandshakesPerHost is refused on accept, not left to the handshake timeout")
        print("""
            healthy request latency, \(quiet.count) quiet: p50 \(Self.percentile(quiet, 0.5)) p99 \(Self.percentile(quiet, 0.99)); \
            \(loaded.count) under attack: p50 \(Self.percentile(loaded, 0.5)) p99 \(Self.percentile(loaded, 0.99)) max \(loaded.max()!)
            """)
        XCTAssertLessThan(Self.percentile(loaded, 0.99), Self.p99Bound)
        XCTAssertFalse(a.seenEvents.contains { $0.isConnectionDown })

        await a.shutdown()
        await b.shutdown()
        try await attackers.shutdownGracefully()
        try await nodes.shutdownGracefully()
    }

    /// Requests from `a` to `b`, one started every 5 ms for `duration` whether or not the
    /// previous ones were answered, so that a stall delays every request due during it; their
    /// latencies, counted from when each was due. Every one must succeed.
    private func pings(from a: TestNode, to b: TestNode, for duration: Duration) async throws -> [Duration] {
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(5)
        let count = Int(duration / .milliseconds(5))
        return try await withThrowingTaskGroup(of: Duration.self) { requests in
            for index in 0..<count {
                let due = start + .milliseconds(5) * index
                try await clock.sleep(until: due)
                requests.addTask {
                    let reply = try await a.transport.request(.int(Int64(index)), to: b.id, timeout: .seconds(2))
                    XCTAssertEqual(reply, .int(Int64(index)))
                    return clock.now - due
                }
            }
            return try await requests.reduce(into: []) { $0.append($1) }
        }
    }

    /// The attacking connections, and among them the flood's.
    private struct Attackers: Sendable {
        var all: [RawPeer] = []
        var flood: [RawPeer] = []
    }

    /// Slow senders after the handshake (they know the cookie), then at once: slow senders
    /// before it, garbage, and a flood of `floodSize` silent connections.
    private static func attack(_ node: TestNode, floodSize: Int, group: any EventLoopGroup) async throws -> Attackers {
        var attackers = Attackers()
        for _ in 0..<5 {
            let slow = try await RawPeer.authenticated(to: node, group: group)
            try await slow.channel.send([0, 0, 0x10, 0, FrameKind.bytes.rawValue])
            attackers.all.append(slow)
        }
        let trickling = await connections(5, to: node, group: group)
        for peer in trickling { try? await peer.channel.send([0, 0, 0x01, 0, FrameKind.hello.rawValue]) }
        let garbage = await connections(20, to: node, group: group)
        for peer in garbage { try? await peer.channel.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)) }
        attackers.flood = await connections(floodSize, to: node, group: group)
        attackers.all += trickling + garbage + attackers.flood

        // A byte every 100 ms on the slow senders until the node closes them (bounded).
        let slow = attackers.all[0..<5] + trickling
        for _ in 0..<30 where slow.contains(where: \.channel.isActive) {
            for peer in slow where peer.channel.isActive { try? await peer.channel.send([0x01]) }
            try await Task.sleep(for: .milliseconds(100))
        }
        return attackers
    }

    /// `count` TCP connections to `node`, opened all at once; those whose connect failed are
    /// left out (they cost the node nothing).
    private static func connections(_ count: Int, to node: TestNode, group: any EventLoopGroup) async -> [RawPeer] {
        await withTaskGroup(of: RawPeer?.self) { attempts in
            for _ in 0..<count { attempts.addTask { try? await RawPeer.connect(to: node, group: group) } }
            return await attempts.reduce(into: []) { peers, peer in peer.map { peers.append($0) } }
        }
    }

    /// How many flood connections the descriptor limit allows, up to `wanted`: each costs two
    /// descriptors in this process (the attacker's end and the node's).
    private static func floodSize(wanted: Int) -> Int {
        var limit = rlimit()
        #if os(Linux)
        let read = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
        let read = getrlimit(RLIMIT_NOFILE, &limit)
        #endif
        guard read == 0 else { return 0 }
        return min(wanted, (Int(clamping: limit.rlim_cur) - 300) / 2)
    }

    private static func percentile(_ samples: [Duration], _ fraction: Double) -> Duration {
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }
}
