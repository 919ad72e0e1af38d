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

    static let spinningOverlay = """
        return {
          name = "spinner", version = 1, tick = 20,
          init = function(ctx) return {} end,
          join = function(s) return s end, leave = function(s) return s end,
          on_message = function(s) return s end,
          on_tick = function(s) while true do end end,
        }
        """

    func startNode(_ name: String, overlay: String, group: any EventLoopGroup) async throws -> TrellisNode {
        var configuration = NodeConfiguration(
            name: name, clusterName: "messaging", cookie: "c", overlaySource: overlay, overlayFileName: "\(name).lua"
        )
        configuration.scriptLimits.instructionBudget = 100_000
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

    func testANodeWhoseOverlayLoopsForeverKeepsServing() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let spinner = try await startNode("spinner", overlay: Self.spinningOverlay, group: group)
        let client = try await startNode("client", overlay: Self.staticOverlay, group: group)
        spinner.onRequest { message, responder in responder.reply("still here") }
        try await Task.sleep(for: .milliseconds(300))
        let errors = await spinner.scriptErrors
        XCTAssertGreaterThan(errors, 0, "the runaway on_tick must be stopped and counted")
        for _ in 0..<20 {
            let reply = try await client.request("ping", to: spinner.id, timeout: .seconds(2))
            XCTAssertEqual(reply, "still here")
        }
        await spinner.stop()
        await client.stop()
        try await group.shutdownGracefully()
    }
}
