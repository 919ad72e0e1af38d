import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

/// Throughput and latency over loopback, in one process. Opt in with
/// `TRELLIS_TRANSPORT_PERF=1 swift test -c release --filter PerformanceTests`.
final class PerformanceTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func setUp() async throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TRELLIS_TRANSPORT_PERF"] == "1", "performance run not requested")
    }

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testOneWayThroughput() async throws {
        for size in [16, 1024] {
            let count = size == 16 ? 2_000_000 : 500_000
            let received = NIOLockedValueBox(0)
            let a = try await Transport.start(config("a"), group: group, onMessage: { _ in }, onRequest: { _, _ in })
            let b = try await Transport.start(
                config("b"), group: group, onMessage: { _ in received.withLockedValue { $0 += 1 } }, onRequest: { _, _ in })
            let payload = [UInt8](repeating: 1, count: size)
            try await a.send(bytes: payload, to: b.localID)
            await waitUntil("warm-up") { received.withLockedValue { $0 } == 1 }
            let start = ContinuousClock.now
            for _ in 0..<count { try await a.send(bytes: payload, to: b.localID) }
            await waitUntil("all", timeout: .seconds(120)) { received.withLockedValue { $0 } == count + 1 }
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            print("one-way \(size) B: \(Int(Double(count) / seconds)) msg/s")
            await a.shutdown()
            await b.shutdown()
        }
    }

    func testSequentialRequests() async throws {
        let a = try await Transport.start(config("a"), group: group, onMessage: { _ in }, onRequest: { _, _ in })
        let b = try await Transport.start(
            config("b"), group: group, onMessage: { _ in },
            onRequest: { message, responder in if case .value(let v) = message.payload { responder.reply(v) } })
        _ = try await a.request(0, to: b.localID, timeout: .seconds(5))
        let count = 100_000
        var latencies: [Duration] = []
        latencies.reserveCapacity(count)
        let start = ContinuousClock.now
        for i in 0..<count {
            let t0 = ContinuousClock.now
            _ = try await a.request(.int(Int64(i)), to: b.localID, timeout: .seconds(5))
            latencies.append(ContinuousClock.now - t0)
        }
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        latencies.sort()
        print("request/response: \(Int(Double(count) / seconds)) rps, p50 \(latencies[count / 2]), p99 \(latencies[count * 99 / 100])")
        await a.shutdown()
        await b.shutdown()
    }

    private func config(_ name: String) -> TransportConfig {
        var logger = Logger(label: "perf")
        logger.logLevel = .critical
        return TransportConfig(name: name, clusterName: "perf", cookie: "c", logger: logger)
    }
}
