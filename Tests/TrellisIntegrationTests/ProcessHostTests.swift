import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import TrellisLua
import TrellisWire
import XCTest

@testable import Trellis

/// A handed-over process that finds a live process with its id (a call got there first, as
/// happens while nodes' views disagree): its state replaces the live one, and the host says so.
final class ProcessHostTests: XCTestCase {
    let caller = PeerID(name: "caller", host: "127.0.0.1", port: 1)

    func testSwiftProcessesHandedOverReplaceLiveOnesAndSaySo() async {
        let host = SwiftProcessHost(capability: "counter", behavior: CounterBehavior())
        await checkReplacement(on: host, add: .int(1))
    }

    func testLuaActorsHandedOverReplaceLiveOnesAndSaySo() async throws {
        let source = try String(contentsOfFile: ProcessTests.counterActor, encoding: .utf8)
        let host = try LuaActorHost(
            source: source, fileName: "counter.lua", limits: ScriptLimits(), seed: 1, logger: Logger(label: "test"),
            metrics: NodeMetrics(factory: MetricsSystem.factory, node: caller))
        await checkReplacement(on: host, add: .map(["op": "add"]))
    }

    /// Activates "live" with one call, then hands over "live" (count 5) and "new" (count 7):
    /// only "live" is reported as replacing a live process, and both answer from the states
    /// handed over.
    private func checkReplacement(on host: any ProcessHost, add: Value) async {
        let first = await call(host, "live", add)
        XCTAssertEqual(first, .int(1))
        let replaced = NIOLockedValueBox<[String]>([])
        host.resume("live", from: .int(5)) { replaced.withLockedValue { $0.append("live") } }
        host.resume("new", from: .int(7)) { replaced.withLockedValue { $0.append("new") } }
        let live = await call(host, "live", add)
        let new = await call(host, "new", add)
        XCTAssertEqual(live, .int(6), "the handed-over state replaced the live one")
        XCTAssertEqual(new, .int(8))
        XCTAssertEqual(replaced.withLockedValue { $0 }, ["live"], "only the id that was live is reported")
    }

    private func call(_ host: any ProcessHost, _ id: String, _ payload: Value) async -> Value? {
        await withCheckedContinuation { continuation in
            host.call(id, payload: payload, from: caller) { continuation.resume(returning: try? $0.get()) }
        }
    }
}
