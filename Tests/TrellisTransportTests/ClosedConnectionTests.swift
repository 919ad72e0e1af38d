import NIOPosix
@testable import TrellisTransport
import TrellisWire
import XCTest

/// Requests that meet a connection after it closed, while senders can still find it (its
/// socket is closing, and the end of the connection is not reported yet).
final class ClosedConnectionTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    /// A request that finds its connection already closed was never sent: it must say so
    /// (`peerUnreachable`, safe to send elsewhere), not `connectionLost` (in doubt), even
    /// when requests sent before the close were lost with it.
    func testARequestMadeOnAClosedConnectionIsReportedAsNeverSent() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: { _, _ in })
        _ = try? await a.transport.request("warm up", to: b.id, timeout: .milliseconds(100))
        let connection = try XCTUnwrap(a.transport.connection(to: b.id, channel: .default))
        let pending = try XCTUnwrap(connection.pending)
        async let unanswered = a.transport.request("sent, never answered", to: b.id, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        connection.close(reason: "closed by the test")
        do {
            _ = try await unanswered
            XCTFail("b never answers")
        } catch {
            guard case .connectionLost(b.id, _)? = error as? TransportError else { return XCTFail("sent before the close: \(error)") }
        }
        let late = await withUnsafeContinuation { continuation in
            if case .failure(let error) = pending.register(continuation, timeout: .seconds(1)) {
                continuation.resume(returning: .failure(error))
            }
        }
        guard case .failure(.peerUnreachable(b.id, let reason)) = late else { return XCTFail("made after the close: \(late)") }
        XCTAssertEqual(reason, "closed by the test")
        await a.shutdown()
        await b.shutdown()
    }
}
