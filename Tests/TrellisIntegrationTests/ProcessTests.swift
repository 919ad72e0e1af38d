import Foundation
import NIOCore
import NIOPosix
import Trellis
import TrellisTestSupport
import TrellisWire
import XCTest

/// A counter per id, as a Swift process: calls add `by` and return the new count.
struct CounterBehavior: ProcessBehavior {
    func activate(id: String) throws -> Int64 { 0 }

    func handleCall(_ payload: Value, state: inout Int64, id: String, from: PeerID) throws -> Value {
        if payload == "boom" { throw CounterFailure() }
        if case .int(let by) = payload { state += by }
        return .int(state)
    }

    func handleCast(_ payload: Value, state: inout Int64, id: String) throws {
        if case .int(let by) = payload { state += by }
    }

    func handOff(_ state: Int64, id: String) throws -> Value? { .int(state) }

    func resume(id: String, from value: Value) throws -> Int64 {
        guard case .int(let count) = value else { throw CounterFailure() }
        return count
    }
}

struct CounterFailure: Error, CustomStringConvertible {
    var description: String { "the counter was asked to fail" }
}

/// Processes over real TCP between nodes of one process: placement, routing, lazy activation,
/// failures, and Lua actors.
final class ProcessTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fullMesh = repository.appendingPathComponent("plugins/overlays/full_mesh.lua").path
    static let counterActor = repository.appendingPathComponent("plugins/actors/counter.lua").path

    func startNode(_ name: String, group: any EventLoopGroup) async throws -> TrellisNode {
        let configuration = try NodeConfiguration(name: name, clusterName: "processes", cookie: "c", overlayPath: Self.fullMesh)
        return try await TrellisNode.start(configuration, group: group)
    }

    /// Starts `count` nodes joined in a full mesh, and waits until each sees them all.
    func startCluster(_ count: Int, group: any EventLoopGroup) async throws -> [TrellisNode] {
        var nodes: [TrellisNode] = []
        for index in 1...count {
            let node = try await startNode("p\(index)", group: group)
            if let seed = nodes.first { await node.join(seed.id) }
            nodes.append(node)
        }
        try await waitUntil("every node sees \(count) members") {
            for node in nodes where await node.members.count != count { return false }
            return true
        }
        return nodes
    }

    /// `startCluster`, every node serving `CounterBehavior` as "counter", once all agree on
    /// its table.
    func startCounterCluster(_ count: Int, group: any EventLoopGroup) async throws -> [TrellisNode] {
        let nodes = try await startCluster(count, group: group)
        for node in nodes { await node.serve("counter", with: CounterBehavior()) }
        try await waitForAgreement(nodes, "counter", servers: count)
        return nodes
    }

    /// Waits until every node routes `capability` by the same table, with `servers` owners.
    func waitForAgreement(_ nodes: [TrellisNode], _ capability: String, servers: Int) async throws {
        try await waitUntil("all nodes agree on the \(capability) table") {
            let tables = nodes.map { $0.shardTable(for: capability) }
            guard let first = tables.first ?? nil, Set(first.owners).count == servers else { return false }
            return tables.allSatisfy { $0 == first }
        }
    }

    func testCallsReachOneOwnerPerIdAndActivateLazily() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCluster(3, group: group)
        do {
            XCTAssertNil(nodes[0].shardTable(for: "counter"), "no table before anyone serves the capability")
            for node in nodes { await node.serve("counter", with: CounterBehavior()) }
            try await waitForAgreement(nodes, "counter", servers: 3)
            for node in nodes { await assertActive(node, 0, "nothing is active before the first call") }

            for round in 0..<3 {
                for (index, node) in nodes.enumerated() {
                    for id in 0..<100 {
                        let reply = try await node.call("counter", id: "c\(id)", .int(1))
                        XCTAssertEqual(reply, .int(Int64(round * 3 + index + 1)), "c\(id) after \(round) rounds")
                    }
                }
            }
            var active = 0
            for node in nodes { active += await node.activeProcesses(of: "counter") }
            XCTAssertEqual(active, 100, "each id is active on exactly one node")
            for node in nodes {
                let owned = (0..<100).filter { nodes[0].owner(of: "c\($0)", capability: "counter") == node.id }.count
                await assertActive(node, owned, "\(node.id) holds the ids it owns")
            }

            try await nodes[1].cast("counter", id: "c7", .int(100))
            try await waitUntil("the cast is applied") {
                (try? await nodes[2].call("counter", id: "c7", .int(0))) == .int(109)
            }
        } catch {
            XCTFail("\(error)")
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    func testAFailingProcessRestartsAndOthersAreUntouched() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterCluster(2, group: group)
        let remoteID = (0..<100).map { "r\($0)" }.first { nodes[0].owner(of: $0, capability: "counter") == nodes[1].id }!
        for id in [remoteID, "other"] { _ = try await nodes[0].call("counter", id: id, .int(5)) }
        do {
            _ = try await nodes[0].call("counter", id: remoteID, "boom")
            XCTFail("the failing call must throw")
        } catch {
            guard case .processFailed(let capability, let id, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual([capability, id], ["counter", remoteID])
            XCTAssertTrue(reason.contains("asked to fail"), reason)
        }
        let restarted = try await nodes[0].call("counter", id: remoteID, .int(1))
        XCTAssertEqual(restarted, .int(1), "the failed process starts afresh")
        let untouched = try await nodes[0].call("counter", id: "other", .int(1))
        XCTAssertEqual(untouched, .int(6), "other processes keep their state")
        do {
            _ = try await nodes[0].call("nobody-serves-this", id: "x", .nil)
            XCTFail("an unserved capability must throw")
        } catch {
            XCTAssertEqual(error, .noNodeHasCapability("nobody-serves-this"))
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    func testLuaActorsServeACapabilityWithoutSwift() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCluster(2, group: group)
        for node in nodes {
            let capability = try await node.serveActor(contentsOf: Self.counterActor)
            XCTAssertEqual(capability, "counter")
        }
        try await waitForAgreement(nodes, "counter", servers: 2)
        for _ in 0..<5 {
            for id in 0..<20 { _ = try await nodes[0].call("counter", id: "l\(id)", .map(["op": "add", "by": 2])) }
        }
        for id in 0..<20 {
            let count = try await nodes[1].call("counter", id: "l\(id)", .map(["op": "get"]))
            XCTAssertEqual(count, .int(10))
        }
        do {
            _ = try await nodes[1].call("counter", id: "l3", .map(["op": "explode"]))
            XCTFail("an unknown op must fail")
        } catch {
            guard case .processFailed(_, _, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("counter.lua") && reason.contains("unknown op"), reason)
        }
        let restarted = try await nodes[0].call("counter", id: "l3", .map(["op": "get"]))
        XCTAssertEqual(restarted, .int(0), "a process whose callback failed starts afresh")
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// 10,000 increments over 100 counters, from two nodes, while a fourth node joins and then
    /// one of the first three leaves gracefully: the processes move with their counts.
    func testCountsSurviveAJoinAndAGracefulLeave() async throws {
        try await runHandoff(serve: { node in await node.serve("counter", with: CounterBehavior()) }, increment: .int(1))
    }

    func testLuaActorCountsSurviveAJoinAndAGracefulLeave() async throws {
        try await runHandoff(
            serve: { node in _ = try await node.serveActor(contentsOf: Self.counterActor) },
            increment: .map(["op": "add", "by": 1]))
    }

    func runHandoff(serve: (TrellisNode) async throws -> Void, increment: Value) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes = try await startCluster(3, group: group)
        for node in nodes { try await serve(node) }
        try await waitForAgreement(nodes, "counter", servers: 3)
        let ids = (0..<100).map { "h\($0)" }
        let callers = [nodes[0], nodes[2]]
        let leaver = nodes[1]
        var failures: [String] = []
        for phase in 0..<4 {
            if phase == 1 {
                let joiner = try await startNode("p4", group: group)
                try await serve(joiner)
                await joiner.join(nodes[0].id)
                nodes.append(joiner)
            }
            if phase == 2 { await leaver.leave() }
            failures += await withTaskGroup(of: [String].self) { tasks in
                for (index, caller) in callers.enumerated() {
                    tasks.addTask {
                        var failed: [String] = []
                        for _ in 0..<25 {
                            for id in ids[(index * 50)..<(index * 50 + 50)] {
                                do { _ = try await caller.call("counter", id: id, increment) } catch { failed.append("\(error)") }
                            }
                        }
                        return failed
                    }
                }
                return await tasks.reduce(into: []) { $0 += $1 }
            }
        }
        XCTAssertEqual(failures.count, 0, "calls failed across the join and the leave: \(failures.prefix(3))")
        var total: Int64 = 0
        var miscounted: [String] = []
        for id in ids {
            let count = try await nodes[0].call("counter", id: id, increment == .int(1) ? .int(0) : .map(["op": "get"]))
            if case .int(let n) = count { total += n }
            if count != .int(100) { miscounted.append("\(id)=\(count)") }
        }
        XCTAssertEqual(miscounted, [], "every id counts 100 (all together \(total) of 10,000)")
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// A leaving node routes by the tables it handed its processes off by until it stops, even
    /// once its overlay has dropped every member: calls it makes or still receives in its last
    /// moments reach the new owners, where the counts arrived. (Before, its tables emptied with
    /// its members and it served such calls itself, on fresh processes whose counts were lost.)
    func testALeavingNodeRoutesByItsHandoffTablesUntilItStops() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterCluster(3, group: group)
        let leaver = nodes[2]
        let ids = (0..<20).map { "l\($0)" }
        for id in ids { _ = try await leaver.call("counter", id: id, .int(5)) }
        let leaving = Task { await leaver.leave() }
        try await waitUntil("the leaver's overlay has dropped its members", within: .seconds(5)) { await leaver.members.count <= 1 }
        for id in ids {
            let count = try await leaver.call("counter", id: id, .int(1))
            XCTAssertEqual(count, .int(6), id)
        }
        await leaving.value
        for id in ids {
            let count = try await nodes[0].call("counter", id: id, .int(0))
            XCTAssertEqual(count, .int(6), id)
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// A newcomer calls while it knows only some holders, and an old member calls the same
    /// ids: each id must live on one node only, so every count ends at exactly 2.
    func testANewcomerWithAPartialViewSplitsNoProcess() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var nodes = try await startCounterCluster(3, group: group)
        let ids = (0..<300).map { "n\($0)" }
        let joiner = try await startNode("p4", group: group)
        await joiner.serve("counter", with: CounterBehavior())
        await joiner.join(nodes[0].id)
        nodes.append(joiner)
        var failures: [String] = []
        for id in ids {
            for caller in [joiner, nodes[1]] {
                do { _ = try await caller.call("counter", id: id, .int(1)) } catch { failures.append("\(error)") }
            }
        }
        try await waitForAgreement(nodes, "counter", servers: 4)
        XCTAssertEqual(failures, [])
        var wrong: [String] = []
        for id in ids {
            let count = try await nodes[0].call("counter", id: id, .int(0))
            if count != .int(2) { wrong.append("\(id)=\(count)") }
        }
        XCTAssertEqual(wrong, [])
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// A node that dies without a goodbye loses its processes: once membership has noticed,
    /// their ids start afresh on the new owners, and every other process keeps its state.
    func testProcessesOfACrashedNodeStartAfreshElsewhere() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startCounterCluster(3, group: group)
        let ids = (0..<60).map { "k\($0)" }
        let victim = nodes[2]
        let onVictim = Set(ids.filter { nodes[0].owner(of: $0, capability: "counter") == victim.id })
        XCTAssertFalse(onVictim.isEmpty)
        for id in ids { _ = try await nodes[0].call("counter", id: id, .int(5)) }
        await victim.stop()
        try await waitForAgreement(Array(nodes[0...1]), "counter", servers: 2)
        for id in ids {
            let count = try await nodes[1].call("counter", id: id, .int(1))
            XCTAssertEqual(count, .int(onVictim.contains(id) ? 1 : 6), id)
        }
        for node in nodes[0...1] { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// Lua actors that loop forever, eat memory or return the wrong shape fail their own call
    /// with a clear error; the capability keeps serving every other process.
    func testHostileActorsFailTheirCallAndTheNodeKeepsServing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = try NodeConfiguration(name: "h1", clusterName: "hostile", cookie: "c", overlayPath: Self.fullMesh)
        configuration.scriptLimits.instructionBudget = 200_000
        configuration.scriptLimits.memoryCap = 16 << 20
        let node = try await TrellisNode.start(configuration, group: group)
        try await node.serveActor(source: """
            return {
              name = "hostile", version = 1, capability = "hostile",
              init = function(id) return { n = 0 } end,
              handle_call = function(state, msg)
                if msg == "loop" then while true do end end
                if msg == "bomb" then local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1024) .. i end end
                if msg == "shape" then return print, state end
                state.n = state.n + 1
                return state.n, state
              end,
            }
            """, fileName: "hostile.lua")
        try await waitUntil("the node routes its own capability") { node.shardTable(for: "hostile") != nil }
        _ = try await node.call("hostile", id: "steady", "count")
        for (message, expected) in [("loop", "instruction budget"), ("bomb", "memory cap"), ("shape", "function")] {
            do {
                _ = try await node.call("hostile", id: "victim", .string(message))
                XCTFail("\(message) must fail")
            } catch {
                XCTAssertTrue("\(error)".contains(expected) && "\(error)".contains("hostile.lua"), "\(message): \(error)")
            }
        }
        let steady = try await node.call("hostile", id: "steady", "count")
        XCTAssertEqual(steady, .int(2), "other processes keep their state")
        await node.stop()
        try await group.shutdownGracefully()
    }

    /// A process idle for longer than the idle timeout is passivated; its next call starts it
    /// afresh, while a process in use stays.
    func testIdleProcessesArePassivated() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = try NodeConfiguration(name: "idle", clusterName: "idle", cookie: "c", overlayPath: Self.fullMesh)
        configuration.processIdleTimeout = .milliseconds(300)
        let node = try await TrellisNode.start(configuration, group: group)
        await node.serve("counter", with: CounterBehavior())
        try await waitUntil("the node routes its own capability") { node.shardTable(for: "counter") != nil }
        _ = try await node.call("counter", id: "idle", .int(5))
        for _ in 0..<8 {
            _ = try await node.call("counter", id: "busy", .int(1))
            try await Task.sleep(for: .milliseconds(100))
        }
        try await waitUntil("the idle process is passivated") { await node.activeProcesses(of: "counter") == 1 }
        let idle = try await node.call("counter", id: "idle", .int(1))
        XCTAssertEqual(idle, .int(1), "a passivated process starts afresh")
        let busy = try await node.call("counter", id: "busy", .int(0))
        XCTAssertEqual(busy, .int(8), "a process in use is kept")
        await node.stop()
        try await group.shutdownGracefully()
    }

    func assertActive(_ node: TrellisNode, _ expected: Int, _ message: String, line: UInt = #line) async {
        let active = await node.activeProcesses(of: "counter")
        XCTAssertEqual(active, expected, message, line: line)
    }
}
