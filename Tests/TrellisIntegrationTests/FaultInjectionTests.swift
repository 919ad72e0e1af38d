import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisTestSupport
import TrellisWire
import XCTest

/// Fault injection on running nodes over real TCP: rules and scripts change what a node
/// receives, the failure detector sees injected heartbeat loss, and the admin interface
/// drives it all.
final class FaultInjectionTests: XCTestCase {
    static let plugins = URL(fileURLWithPath: ProcessTests.fullMesh).deletingLastPathComponent().deletingLastPathComponent()

    /// Counts what `node` receives on application channels, by payload.
    final class Inbox: Sendable {
        let received = NIOLockedValueBox<[Value]>([])
        let task: Task<Void, Never>

        init(_ node: TrellisNode) {
            let received = self.received
            task = Task { for await message in node.messages { if case .value(let value) = message.payload { received.withLockedValue { $0.append(value) } } } }
        }

        var values: [Value] { received.withLockedValue { $0 } }

        /// Waits until `count` messages arrived (at most `seconds`).
        func wait(for count: Int, seconds: Int = 10) async throws {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while values.count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func send(_ range: Range<Int>, from sender: TrellisNode, to receiver: TrellisNode) async throws {
        for n in range { try await sender.send(.int(Int64(n)), to: receiver.id) }
    }

    func testDropDuplicateAndDelayApplyToWhatTheNodeReceivesAndClearingEndsThem() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(3, named: "f", group: group)
        let (a, b, c) = (nodes[0], nodes[1], nodes[2])
        let inbox = Inbox(b)

        try await b.injectFaults(FaultPlan(rules: [FaultRule(.drop, from: ["f1"], channel: "default")]))
        try await send(0..<100, from: a, to: b)
        try await send(100..<110, from: c, to: b)
        try await inbox.wait(for: 10)
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(inbox.values, (100..<110).map { Value.int(Int64($0)) }, "only f1's messages are dropped")
        let status = await b.faultStatus
        XCTAssertEqual(status.counts.dropped, 100)

        try await b.injectFaults(FaultPlan(rules: [FaultRule(.duplicate, channel: "default")]))
        try await send(200..<250, from: a, to: b)
        try await inbox.wait(for: 110)
        XCTAssertEqual(inbox.values.count, 110, "every message arrives twice")
        XCTAssertEqual(Set(inbox.values.suffix(100)), Set((200..<250).map { Value.int(Int64($0)) }))

        try await b.injectFaults(FaultPlan(rules: [FaultRule(.delay(milliseconds: 300, jitter: 0), channel: "default")]))
        let sentAt = ContinuousClock.now
        try await send(300..<301, from: a, to: b)
        try await inbox.wait(for: 111)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - sentAt, .milliseconds(290), "a delayed message cannot come early")
        XCTAssertEqual(inbox.values.last, .int(300))

        try await b.injectFaults(FaultPlan(rules: [FaultRule(.reorder(window: 40), channel: "default")]))
        try await send(400..<600, from: a, to: b)
        try await inbox.wait(for: 311)
        let reordered = inbox.values.suffix(200)
        XCTAssertEqual(Set(reordered), Set((400..<600).map { Value.int(Int64($0)) }), "reordering loses nothing")
        XCTAssertNotEqual(Array(reordered), (400..<600).map { Value.int(Int64($0)) }, "later messages overtake held ones")

        await b.clearFaults()
        try await send(700..<800, from: a, to: b)
        try await inbox.wait(for: 411)
        XCTAssertEqual(Array(inbox.values.suffix(100)), (700..<800).map { Value.int(Int64($0)) }, "in order and once again")
        let cleared = await b.faultStatus
        XCTAssertEqual(cleared.plan, .none)

        inbox.task.cancel()
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// Losing every heartbeat answer from one peer is what a dead peer looks like: the node
    /// marks it down within the failure timeout, and takes it back once the fault ends.
    func testInjectedHeartbeatLossIsSeenByTheFailureDetectorAndHeals() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(2, named: "h", group: group)
        let (a, b) = (nodes[0], nodes[1])
        let events = await a.memberEvents()
        try await a.injectFaults(FaultPlan(rules: [FaultRule(.drop, from: ["h2"], channel: "membership")]))
        let down = Task { () -> Bool in
            for await event in events { if event == .down(b.id) { return true } }
            return false
        }
        let sawDown = await result(within: .seconds(10)) { await down.value }
        XCTAssertEqual(sawDown, true, "h1 never marked h2 down")
        await a.clearFaults()
        await a.join(b.id)
        var members = await a.members
        for _ in 0..<250 where members.count < 2 {
            try await Task.sleep(for: .milliseconds(20))
            members = await a.members
        }
        XCTAssertEqual(members.count, 2, "h2 is back once the fault ends")
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// A Lua fault script from `plugins/faults/` decides what no rule hits; a failing one
    /// lets messages through and is counted.
    func testFaultScriptsDecideAndAFailingOneDelivers() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(2, named: "n", group: group)
        let (a, b) = (nodes[0], nodes[1])
        let inbox = Inbox(b)
        let path = Self.plugins.appendingPathComponent("faults/lossy_link.lua").path
        let lossy = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "local LOSS = 0.2", with: "local LOSS = 1")
        try await b.injectFaults(FaultPlan(script: .init(source: lossy, fileName: "lossy_link.lua")))
        try await send(0..<50, from: a, to: b)
        try await Task.sleep(for: .milliseconds(300))
        XCTAssertEqual(inbox.values.count, 0, "the script drops everything on the n1-n2 link")
        let members = await b.members.count
        XCTAssertEqual(members, 2, "membership traffic is spared")

        let broken = "return { name = 'broken', version = 1, decide = function() error('boom') end }"
        try await b.injectFaults(FaultPlan(script: .init(source: broken, fileName: "broken.lua")))
        try await send(50..<60, from: a, to: b)
        try await inbox.wait(for: 10)
        XCTAssertEqual(inbox.values.count, 10)
        let status = await b.faultStatus
        XCTAssertGreaterThanOrEqual(status.counts.scriptErrors, 10)
        XCTAssertTrue(status.lastScriptError?.contains("broken.lua") == true && status.lastScriptError?.contains("boom") == true)

        do {
            try await b.injectFaults(FaultPlan(script: .init(source: "return {}", fileName: "empty.lua")))
            XCTFail("a script without decide is refused")
        } catch {
            XCTAssertTrue("\(error)".contains("`decide` must be a function"), "\(error)")
        }
        let kept = await b.faultStatus
        XCTAssertEqual(kept.plan.script?.fileName, "broken.lua", "a refused plan leaves the one in force")
        inbox.task.cancel()
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// The admin interface installs a plan on every member, reports it, partitions and heals.
    func testAdminInterfaceRollsOutFaultsAndPartitions() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(3, named: "m", group: group)
        let admin = try await AdminServer.start(node: nodes[0], port: 0, token: "t", group: group)
        func call(_ method: String, _ path: String, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            var request = URLRequest(url: URL(string: "http://\(admin.address)\(path)")!)
            request.httpMethod = method
            request.setValue("Bearer t", forHTTPHeaderField: "Authorization")
            request.httpBody = body.map { Data($0.utf8) }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as! HTTPURLResponse).statusCode, try JSONSerialization.jsonObject(with: data) as! [String: Any])
        }
        let plan = #"{"rules": [{"action": "drop", "from": "m3", "channel": "default", "probability": 0.5}]}"#
        let (status, reply) = try await call("POST", "/faults?cluster=1", plan)
        XCTAssertEqual(status, 200, "\(reply)")
        XCTAssertEqual((reply["results"] as? [[String: Any]])?.count, 3)
        for node in nodes {
            let installed = await node.faultStatus.plan.rules
            XCTAssertEqual(installed, [FaultRule(.drop, from: ["m3"], channel: "default", probability: 0.5)])
        }
        let (badStatus, bad) = try await call("POST", "/faults", #"{"rules": [{"action": "melt"}]}"#)
        XCTAssertEqual(badStatus, 400)
        XCTAssertTrue((bad["error"] as? String)?.contains("drop, delay, duplicate or reorder") == true, "\(bad)")

        let (cut, cutReply) = try await call("POST", "/partition", #"{"peers": ["m2"]}"#)
        XCTAssertEqual(cut, 200, "\(cutReply)")
        var members = await nodes[0].members
        for _ in 0..<250 where members.contains(nodes[1].id) {
            try await Task.sleep(for: .milliseconds(20))
            members = await nodes[0].members
        }
        XCTAssertFalse(members.contains(nodes[1].id), "m1 dropped m2 after the cut")
        let (_, listed) = try await call("GET", "/faults")
        XCTAssertEqual(listed["unreachable"] as? [String], [nodes[1].id.description])
        let (healed, _) = try await call("DELETE", "/partition")
        XCTAssertEqual(healed, 200)
        await nodes[0].join(nodes[1].id)
        for _ in 0..<250 where members.count < 3 {
            try await Task.sleep(for: .milliseconds(20))
            members = await nodes[0].members
        }
        XCTAssertEqual(members.count, 3, "m2 is a member again after the heal, so the cluster-wide clear reaches it")
        let (cleared, _) = try await call("DELETE", "/faults?cluster=1")
        XCTAssertEqual(cleared, 200)
        for node in nodes {
            let plan = await node.faultStatus.plan
            XCTAssertEqual(plan, .none)
        }
        await admin.stop()
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}
