import NIOCore
import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Connection floods: inbound connections over `ConnectionLimits` are closed as soon as they
/// are accepted, with a reject frame saying which limit, and a rate-limited log line.
final class ConnectionFloodTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    func testPendingHandshakeCapRefusesTheExcessAtOnce() async throws {
        let log = CapturedLog()
        let b = try await TestNode.start("b", group: group) {
            $0.handshakeTimeout = .seconds(60)
            $0.limits.maxPendingHandshakes = 5
            $0.logger = log.logger("b")
        }
        let (held, refused) = try await flood(b, count: 20)
        XCTAssertEqual(held.count, 5)
        XCTAssertEqual(refused, 15)
        XCTAssertLessThanOrEqual(log.lines(containing: "closing unauthenticated connection").count, 2, "rate-limited")
        XCTAssertFalse(log.lines(containing: "maxPendingHandshakes").isEmpty)

        for raw in held { await raw.close() }
        let again = try await admittedOnceSlotsFree(b)
        await again.close()
        await b.shutdown()
    }

    func testPerHostPendingCapRefusesTheExcessAtOnce() async throws {
        let b = try await TestNode.start("b", group: group) {
            $0.handshakeTimeout = .seconds(60)
            $0.limits.maxPendingHandshakesPerHost = 3
        }
        let (held, refused) = try await flood(b, count: 10, expecting: "maxPendingHandshakesPerHost")
        XCTAssertEqual(held.count, 3)
        XCTAssertEqual(refused, 7)
        for raw in held { await raw.close() }
        await b.shutdown()
    }

    func testInboundConnectionCapCountsAuthenticatedConnections() async throws {
        let b = try await TestNode.start("b", group: group) { $0.limits.maxInboundConnections = 3 }
        var peers: [RawPeer] = []
        for _ in 0..<3 { peers.append(try await RawPeer.authenticated(to: b, group: group)) }
        let (held, refused) = try await flood(b, count: 1, expecting: "maxInboundConnections")
        XCTAssertEqual(held.count + refused, 1)
        XCTAssertEqual(refused, 1, "a fourth connection is one too many, authenticated or not")

        await peers.removeLast().close()
        peers.append(try await admittedOnceSlotsFree(b))
        for peer in peers { await peer.close() }
        await b.shutdown()
    }

    /// An authenticated connection to `node`, retried until the node has room for it again:
    /// slots free up when the connections holding them end.
    private func admittedOnceSlotsFree(_ node: TestNode) async throws -> RawPeer {
        for _ in 0..<100 {
            if let peer = try? await RawPeer.authenticated(to: node, group: group) { return peer }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RawPeerError.unexpectedFrame
    }

    /// Opens `count` raw connections to `node` at once; returns those still open after the
    /// refusals, and how many were refused with a reject frame naming `expecting`.
    private func flood(
        _ node: TestNode, count: Int, expecting limit: String = "maxPendingHandshakes"
    ) async throws -> (held: [RawPeer], refused: Int) {
        let group = group
        let peers = try await withThrowingTaskGroup(of: RawPeer.self) { tasks in
            for _ in 0..<count { tasks.addTask { try await RawPeer.connect(to: node, group: group) } }
            return try await tasks.reduce(into: []) { $0.append($1) }
        }
        var held: [RawPeer] = []
        var refused = 0
        for peer in peers {
            switch try await peer.nextFrame() {
            case .challenge:
                held.append(peer)
            case .reject(let value):
                XCTAssertTrue(value["reason"]?.stringValue?.contains("(\(limit))") ?? false, "\(value)")
                let closed = await peer.channel.closes(within: .seconds(2))
                XCTAssertTrue(closed)
                refused += 1
            default:
                XCTFail("unexpected frame")
            }
        }
        return (held, refused)
    }
}
