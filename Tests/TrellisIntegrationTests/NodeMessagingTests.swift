import NIOCore
import NIOPosix
import Trellis
import TrellisLua
import TrellisWire
import XCTest

/// Two in-process nodes over real TCP: messaging, and a hostile overlay that must not stop a
/// node from serving.
final class NodeMessagingTests: XCTestCase {
    static let staticOverlay = """
        return {
          name = "none", version = 1,
          init = function(ctx) return {} end,
          join = function(s) return s end, leave = function(s) return s end,
          on_message = function(s) return s end, on_tick = function(s) return s end,
        }
        """

    /// Overlays whose `on_tick` (every 20 ms) misbehaves in one way each.
    static let hostileTicks = [
        "loop": "while true do end",
        "pcall loop": "while true do pcall(function() while true do end end) end",
        "memory bomb": "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(4096) .. i end",
        "error": "error('tick failed')",
        "wrong shape": "return state, 'everyone'",
        "sends a function": "return state, nil, { { to = state.self, msg = print } }",
    ]

    static func overlay(onTick body: String) -> String {
        """
        return {
          name = "hostile", version = 1, tick = 20,
          init = function(ctx) return { self = ctx.self } end,
          join = function(s) return s end, leave = function(s) return s end,
          on_message = function(s) return s end,
          on_tick = function(state) \(body) end,
        }
        """
    }

    func startNode(_ name: String, overlay: String, group: any EventLoopGroup) async throws -> TrellisNode {
        var configuration = NodeConfiguration(
            name: name, clusterName: "messaging", cookie: "c", overlaySource: overlay, overlayFileName: "\(name).lua"
        )
        configuration.scriptLimits.instructionBudget = 100_000
        configuration.scriptLimits.memoryCap = 8 << 20
        return try await TrellisNode.start(configuration, group: group)
    }

    func testValuesBytesAndRequestsFlowBetweenTwoNodes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await startNode("a", overlay: Self.staticOverlay, group: group)
        let b = try await startNode("b", overlay: Self.staticOverlay, group: group)
        b.onRequest { message, responder in
            guard case .value(.int(let n)) = message.payload else { return responder.fail("expected an integer") }
            responder.reply(.int(n * 2))
        }
        for i in 0..<1_000 { try await a.send(.int(Int64(i)), to: b.id) }
        try await a.send(bytes: [1, 2, 3], to: b.id)
        var received: [Int64] = []
        for await message in b.messages {
            if case .value(.int(let n)) = message.payload { received.append(n) }
            if case .bytes = message.payload { break }
        }
        XCTAssertEqual(received, (0..<1_000).map(Int64.init), "delivered complete and in order")
        let reply = try await a.request(21, to: b.id, timeout: .seconds(5))
        XCTAssertEqual(reply, 42)
        let replies = try await a.withAffinity(to: b.id) {
            var replies: [Value] = []
            for n in 0..<100 { replies.append(try await a.request(.int(Int64(n)), to: b.id, timeout: .seconds(5))) }
            return replies
        }
        XCTAssertEqual(replies, (0..<100).map { .int(Int64($0) * 2) }, "requests from the connection's loop complete in order")
        do {
            _ = try await a.request("not a number", to: b.id, timeout: .seconds(5))
            XCTFail("a failing handler must fail the call")
        } catch {
            XCTAssertTrue("\(error)".contains("expected an integer"), "\(error)")
        }
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    /// A node once crashed after about 100,000 requests (its handler closure grew one thunk
    /// per request until the stack overflowed).
    func testANodeAnswersMoreRequestsThanAStackCouldHoldThunks() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let a = try await startNode("a", overlay: Self.staticOverlay, group: group)
        let b = try await startNode("b", overlay: Self.staticOverlay, group: group)
        b.onRequest { message, responder in responder.reply(.nil) }
        let callers = 32, perCaller = 8_000
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<callers {
                tasks.addTask { for _ in 0..<perCaller { _ = try await a.request(.nil, to: b.id, timeout: .seconds(10)) } }
            }
            try await tasks.waitForAll()
        }
        await a.stop()
        await b.stop()
        try await group.shutdownGracefully()
    }

    func testNodesWithHostileOverlaysKeepServing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let client = try await startNode("client", overlay: Self.staticOverlay, group: group)
        for (name, body) in Self.hostileTicks.sorted(by: { $0.key < $1.key }) {
            let node = try await startNode("hostile", overlay: Self.overlay(onTick: body), group: group)
            node.onRequest { message, responder in responder.reply("still here") }
            try await Task.sleep(for: .milliseconds(200))
            let errors = await node.scriptErrors
            XCTAssertGreaterThan(errors, 0, "\(name): the failing on_tick must be stopped and counted")
            for _ in 0..<10 {
                let reply = try await client.request("ping", to: node.id, timeout: .seconds(2))
                XCTAssertEqual(reply, "still here", name)
            }
            let members = await node.members
            XCTAssertEqual(members, [node.id], "\(name): a failed callback changes no members")
            await node.stop()
        }
        await client.stop()
        try await group.shutdownGracefully()
    }
}
