import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Trellis
import TrellisWire
import XCTest

/// Replacing the overlay on running nodes over real TCP, with application messages flowing.
final class HotSwapTests: XCTestCase {
    /// full_mesh.lua as version `version`; with `failing`, its `migrate` refuses.
    static func fullMesh(version: Int, failing: Bool = false) throws -> String {
        var source = try String(contentsOfFile: ProcessTests.fullMesh, encoding: .utf8)
            .replacingOccurrences(of: "  version = 1,", with: "  version = \(version),")
        if failing {
            source = source.replacingOccurrences(
                of: "  migrate = function(old, old_version, ctx)\n",
                with: "  migrate = function(old, old_version, ctx)\n    error('refusing to migrate from version ' .. old_version)\n")
        }
        return source
    }

    func testSwapsUnderLoadLoseNoMessageAndDropNoMember() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(4, named: "s", group: group)
        let downs = NIOLockedValueBox<[String]>([])
        let watchers = nodes.map { node in
            Task { for await event in await node.memberEvents() { if case .down(let peer) = event { downs.withLockedValue { $0.append("\(node.id) lost \(peer)") } } } }
        }
        let (sender, receiver) = (nodes[0], nodes[1])
        let received = NIOLockedValueBox(0)
        let consumer = Task { for await _ in receiver.messages { received.withLockedValue { $0 += 1 } } }
        let total = 30_000
        let sending = Task {
            for index in 0..<total { try await sender.send(.int(Int64(index)), to: receiver.id) }
        }

        for version in 2...3 {
            let source = try Self.fullMesh(version: version)
            for node in nodes {
                let report = try await node.swapOverlay(source: source, fileName: "full_mesh.lua")
                XCTAssertEqual(report.after, "full_mesh.lua v\(version)")
                XCTAssertEqual(report.members.count, 4, "migrate keeps every member")
            }
        }
        let failing = try Self.fullMesh(version: 4, failing: true)
        for node in nodes[2...] {
            do {
                _ = try await node.swapOverlay(source: failing, fileName: "full_mesh.lua")
                XCTFail("a migrate that raises must refuse the swap")
            } catch {
                XCTAssertTrue("\(error)".contains("refusing to migrate from version 3"), "\(error)")
            }
            let version = await node.overlayVersion
            XCTAssertEqual(version, "full_mesh.lua v3", "a refused swap leaves the old script")
            let members = await node.members.count
            XCTAssertEqual(members, 4)
        }
        do {
            _ = try await nodes[0].swapOverlay(source: "return { name = 'broken' }", fileName: "broken.lua")
            XCTFail("a script that breaks the contract must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("broken.lua"), "\(error)")
        }

        try await sending.value
        for _ in 0..<500 where received.withLockedValue({ $0 }) < total { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(received.withLockedValue { $0 }, total, "every message sent during the swaps arrives")
        XCTAssertEqual(downs.withLockedValue { $0 }, [], "no member is dropped by a swap that keeps it")
        for watcher in watchers { watcher.cancel() }
        consumer.cancel()
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    func testTheAdminInterfaceReportsAndSwapsWithAToken() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let configuration = try NodeConfiguration(name: "admin", clusterName: "admin", cookie: "c", overlayPath: ProcessTests.fullMesh)
        let node = try await TrellisNode.start(configuration, group: group)
        let admin = try await AdminServer.start(node: node, port: 0, token: "t0ken", group: group)
        func ask(_ method: String, _ path: String, token: String?, body: String? = nil) async throws -> (Int, [String: Any]) {
            var request = URLRequest(url: URL(string: "http://\(admin.address)\(path)")!)
            request.httpMethod = method
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            request.httpBody = body.map { Data($0.utf8) }
            let (data, response) = try await URLSession.shared.data(for: request)
            return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
        }
        let (refused, _) = try await ask("GET", "/status", token: "wrong")
        XCTAssertEqual(refused, 401)
        let (ok, status) = try await ask("GET", "/status", token: "t0ken")
        XCTAssertEqual(ok, 200)
        XCTAssertEqual(status["overlay"] as? String, "full_mesh.lua v1")
        let (swapped, report) = try await ask("POST", "/swap/overlay?file=full_mesh.lua", token: "t0ken", body: try Self.fullMesh(version: 2))
        XCTAssertEqual(swapped, 200, "\(report)")
        XCTAssertEqual(report["after"] as? String, "full_mesh.lua v2")
        let (conflict, why) = try await ask("POST", "/swap/overlay?file=bad.lua", token: "t0ken", body: "return 42")
        XCTAssertEqual(conflict, 409)
        XCTAssertTrue((why["error"] as? String ?? "").contains("bad.lua"), "\(why)")
        let version = await node.overlayVersion
        XCTAssertEqual(version, "full_mesh.lua v2")
        await admin.stop()
        await node.stop()
        try await group.shutdownGracefully()
    }

    /// A cluster-wide swap pushed from one node over the members' authenticated connections;
    /// a script whose migrate refuses on some nodes leaves exactly those on the old version.
    func testARollOutReachesEveryMemberAndReportsRefusals() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(3, named: "r", group: group)
        let results = await nodes[0].rollOut(kind: "overlay", source: try Self.fullMesh(version: 2), fileName: "full_mesh.lua")
        XCTAssertEqual(results.count, 3)
        XCTAssertTrue(results.allSatisfy { if case .success = $0.outcome { return true } else { return false } }, "\(results)")
        for node in nodes {
            let version = await node.overlayVersion
            XCTAssertEqual(version, "full_mesh.lua v2")
        }
        let picky = try Self.fullMesh(version: 3).replacingOccurrences(
            of: "  migrate = function(old, old_version, ctx)\n",
            with: "  migrate = function(old, old_version, ctx)\n    if ctx.self:find('r3@', 1, true) then error('r3 stays') end\n")
        let mixed = await nodes[0].rollOut(kind: "overlay", source: picky, fileName: "full_mesh.lua")
        let refused = mixed.filter { if case .failure = $0.outcome { return true } else { return false } }.map(\.node)
        XCTAssertEqual(refused, [nodes[2].id], "\(mixed)")
        let versions = await [nodes[0].overlayVersion, nodes[1].overlayVersion, nodes[2].overlayVersion]
        XCTAssertEqual(versions, ["full_mesh.lua v3", "full_mesh.lua v3", "full_mesh.lua v2"])
        for node in nodes {
            let members = await node.members.count
            XCTAssertEqual(members, 3)
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }

    /// Swapping a Lua actor while calls keep coming: every count moves to the new script and
    /// no increment is lost; a broken script is refused and the old one keeps serving.
    func testSwappingAnActorKeepsEveryProcessState() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let nodes = try await startFullMesh(2, named: "a", group: group)
        for node in nodes { try await node.serveActor(contentsOf: ProcessTests.counterActor) }
        for _ in 0..<250 where Set(nodes[0].shardTable(for: "counter")?.owners ?? []).count < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let v2 = try String(contentsOfFile: ProcessTests.counterActor, encoding: .utf8)
            .replacingOccurrences(of: "  version = 1,", with: "  version = 2,")
        let ids = (0..<40).map { "c\($0)" }
        let calling = Task {
            for _ in 0..<25 { for id in ids { _ = try await nodes[0].call("counter", id: id, .map(["op": "add"])) } }
        }
        try await Task.sleep(for: .milliseconds(30))
        for node in nodes {
            let report = try await node.swapActor(source: v2, fileName: "counter.lua")
            XCTAssertEqual(report.after, "counter.lua v2")
        }
        do {
            _ = try await nodes[1].swapActor(source: "return { name = 'c', version = 3, capability = 'counter' }", fileName: "bad.lua")
            XCTFail("an actor without init and handle_call must be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("bad.lua"), "\(error)")
        }
        try await calling.value
        for id in ids {
            let count = try await nodes[1].call("counter", id: id, .map(["op": "get"]))
            XCTAssertEqual(count, .int(25), id)
        }
        for node in nodes { await node.stop() }
        try await group.shutdownGracefully()
    }
}
