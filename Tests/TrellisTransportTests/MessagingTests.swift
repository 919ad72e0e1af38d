import NIOCore
import NIOPosix
import TrellisTransport
import TrellisWire
import XCTest

final class MessagingTests: XCTestCase {
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    /// A request handler that replies with the request's value after `delay`.
    static func echo(after delay: Duration) -> @Sendable (InboundMessage, Responder) -> Void {
        { message, responder in
            guard case .value(let value) = message.payload else { return }
            Task {
                try? await Task.sleep(for: delay)
                responder.reply(value)
            }
        }
    }

    func testValuesAndBytesArriveInOrder() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        for i in 0..<1000 {
            if i % 2 == 0 {
                try await a.transport.send(.map(["i": .int(Int64(i))]), to: b.id)
            } else {
                try await a.transport.send(bytes: [UInt8(i % 256), 1, 2], to: b.id)
            }
        }
        await waitUntil("1000 messages") { b.receivedCount == 1000 }
        for (i, message) in b.received.enumerated() {
            XCTAssertEqual(message.from, a.id)
            XCTAssertEqual(message.channel, .default)
            switch message.payload {
            case .value(let value): XCTAssertEqual(value, .map(["i": .int(Int64(i))]))
            case .bytes(let bytes): XCTAssertEqual(Array(bytes.readableBytesView), [UInt8(i % 256), 1, 2])
            }
        }
        await a.shutdown()
        await b.shutdown()
    }

    func testManySmallMessagesArriveCompleteAndInOrder() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        let count = 100_000
        for i in 0..<count { try await a.transport.send(.int(Int64(i)), to: b.id) }
        await waitUntil("all messages", timeout: .seconds(60)) { b.receivedCount == count }
        let values = b.received.map { message -> Int64 in
            if case .value(.int(let i)) = message.payload { return i } else { return -1 }
        }
        XCTAssertEqual(values, (0..<Int64(count)).map { $0 })
        await a.shutdown()
        await b.shutdown()
    }

    func testDisconnectWritesWhatIsAlreadyQueued() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        try await a.transport.send("hello", to: b.id)
        await waitUntil("the connection is up") { b.receivedCount == 1 }
        for i in 0..<2_000 { try await a.transport.send(.int(Int64(i)), to: b.id) }
        a.transport.disconnect(from: b.id)
        await waitUntil("everything queued before the disconnect") { b.receivedCount == 2_001 }
        XCTAssertEqual(b.received.last?.payload, .value(1_999))
        do {
            try await a.transport.send("late", to: b.id)
        } catch {
            XCTFail("a send after disconnect dials a fresh connection: \(error)")
        }
        await a.shutdown()
        await b.shutdown()
    }

    /// A disconnect that keeps a channel closes the other channels' connections and leaves
    /// that one's open: requests on it never fail, however often the peer is disconnected
    /// (a leaving node forwards calls to peers its overlay has already dropped).
    func testADisconnectKeepingAChannelLeavesItsConnectionOpen() async throws {
        let forwards: ChannelName = "forwards"
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        _ = try await a.transport.request("on default", to: b.id, timeout: .seconds(5))
        _ = try await a.transport.request("on forwards", to: b.id, channel: forwards, timeout: .seconds(5))
        let requests = Task {
            var failures: [String] = []
            for i in 0..<300 {
                do {
                    _ = try await a.transport.request(.int(Int64(i)), to: b.id, channel: forwards, timeout: .seconds(5))
                } catch {
                    failures.append("\(error)")
                }
            }
            return failures
        }
        for _ in 0..<300 {
            a.transport.disconnect(from: b.id, keeping: [forwards])
            try await Task.sleep(for: .microseconds(200))
        }
        let failures = await requests.value
        XCTAssertEqual(failures.count, 0, "the first: \(failures.first ?? "")")
        await waitUntil("the default channel's connection closes") { b.transport.inboundPeers(on: .default).isEmpty }
        XCTAssertEqual(b.transport.inboundPeers(on: forwards), [a.id], "the kept connection stayed open")
        await a.shutdown()
        await b.shutdown()
    }

    /// Disconnecting from a peer (it left the members) still lets the requests already sent to
    /// it get their replies: a leaving node answers the calls it took before it left.
    func testDisconnectWaitsForRepliesToRequestsAlreadySent() async throws {
        try await assertTheReplyArrivesAcrossADisconnect { _ in }
    }

    /// A peer's go-away that reaches a connection already closing after a disconnect leaves
    /// that close as it was: it still waits for the replies to the requests already sent.
    func testAGoAwayDuringADisconnectStillWaitsForRepliesToRequestsAlreadySent() async throws {
        try await assertTheReplyArrivesAcrossADisconnect { b in await b.transport.shutdown(gracefully: true) }
    }

    /// Sends a request that `b` answers after 300 ms, disconnects from `b` 50 ms later, runs
    /// `meanwhile` with `b`, and checks that the reply still arrives.
    private func assertTheReplyArrivesAcrossADisconnect(meanwhile: (TestNode) async -> Void) async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: Self.echo(after: .milliseconds(300)))
        _ = try await a.transport.request("warm up", to: b.id, timeout: .seconds(5))
        async let slow = a.transport.request("slow", to: b.id, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        a.transport.disconnect(from: b.id)
        await meanwhile(b)
        let reply = try await slow
        XCTAssertEqual(reply, "slow")
        await a.shutdown()
        await b.shutdown()
    }

    /// A connection still waiting for replies after a disconnect closes at once on shutdown,
    /// failing what it awaited, instead of outliving its transport.
    func testShutdownClosesAConnectionThatIsWaitingForReplies() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: { _, _ in })
        _ = try? await a.transport.request("warm up", to: b.id, timeout: .milliseconds(100))
        let start = ContinuousClock.now
        async let unanswered = a.transport.request("never answered", to: b.id, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        a.transport.disconnect(from: b.id)
        await a.shutdown()
        do {
            _ = try await unanswered
            XCTFail("b never answers")
        } catch {
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(3), "failed by the shutdown, not by its timeout: \(error)")
        }
        await b.shutdown()
    }

    /// A request that never left says so (`peerUnreachable`: safe to send again); one that
    /// was on a connection that then closed says it may have been handled (`connectionLost`).
    func testARequestThatWasNotSentIsToldFromOneWhoseConnectionWasLost() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: { _, _ in })
        _ = try? await a.transport.request("warm up", to: b.id, timeout: .milliseconds(100))
        async let unanswered = a.transport.request("never answered", to: b.id, timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        await b.shutdown()
        do {
            _ = try await unanswered
            XCTFail("b never answers")
        } catch {
            guard case .connectionLost(b.id, _)? = error as? TransportError else { return XCTFail("unexpected \(error)") }
        }
        do {
            _ = try await a.transport.request("to nobody", to: b.id, timeout: .seconds(5))
            XCTFail("b is gone")
        } catch {
            guard case .peerUnreachable(b.id, _) = error else { return XCTFail("unexpected \(error)") }
        }
        await a.shutdown()
    }

    /// A peer that shuts down gracefully answers the requests it took and refuses the rest as
    /// not handled: callers hammering it see replies or `peerUnreachable` (safe to send
    /// elsewhere), never `connectionLost` (in doubt).
    func testAGracefulShutdownLeavesNoRequestInDoubt() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: Self.echo(after: .milliseconds(20)))
        _ = try await a.transport.request("warm up", to: b.id, timeout: .seconds(5))
        let outcomes: [String] = await withTaskGroup(of: [String].self) { callers in
            for caller in 0..<8 {
                callers.addTask {
                    var seen: [String] = []
                    for n in 0..<1_000 {
                        do {
                            let reply = try await a.transport.request(.int(Int64(n)), to: b.id, timeout: .seconds(5))
                            if reply != .int(Int64(n)) { seen.append("wrong reply \(reply)") }
                        } catch {
                            guard case .peerUnreachable? = error as? TransportError else { return seen + ["caller \(caller): \(error)"] }
                            return seen
                        }
                    }
                    return seen + ["caller \(caller) was never refused"]
                }
            }
            callers.addTask {
                try? await Task.sleep(for: .milliseconds(100))
                await b.transport.shutdown(gracefully: true)
                return []
            }
            return await callers.reduce(into: []) { $0 += $1 }
        }
        XCTAssertEqual(outcomes, [])
        await a.shutdown()
        await b.shutdown()
    }

    func testRequestResponseFailureAndTimeout() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group, onRequest: { message, responder in
            guard case .value(let value) = message.payload else { return }
            switch value {
            case "ignore": break
            case "fail": responder.fail("nope")
            case .int(let i): responder.reply(.int(i * 2))
            default: responder.reply(value)
            }
        })
        for i in 0..<100 {
            let reply = try await a.transport.request(.int(Int64(i)), to: b.id, timeout: .seconds(5))
            XCTAssertEqual(reply, .int(Int64(i * 2)))
        }
        do {
            _ = try await a.transport.request("fail", to: b.id, timeout: .seconds(5))
            XCTFail("expected a remote failure")
        } catch {
            XCTAssertEqual(error, .remoteFailure("nope"))
        }
        let start = ContinuousClock.now
        do {
            _ = try await a.transport.request("ignore", to: b.id, timeout: .milliseconds(200))
            XCTFail("expected a timeout")
        } catch {
            XCTAssertEqual(error, .timeout(b.id, .milliseconds(200)))
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(200))
        await a.shutdown()
        await b.shutdown()
    }

    func testHeartbeatIsAcknowledged() async throws {
        let a = try await TestNode.start("a", group: group)
        let b = try await TestNode.start("b", group: group)
        a.transport.connect(to: b.id)
        await waitUntil("connection up") { a.seenEvents.contains { $0.isConnectionUp } }
        a.transport.sendHeartbeat(to: b.id)
        await waitUntil("heartbeat ack") { a.seenEvents.contains { $0.isHeartbeatAck } }
        await a.shutdown()
        await b.shutdown()
    }

    func testReconnectsAfterPeerRestarts() async throws {
        let a = try await TestNode.start("a", group: group)
        var b = try await TestNode.start("b", group: group)
        let port = b.id.port
        a.transport.connect(to: b.id)
        await waitUntil("first connectionUp") { a.seenEvents.filter(\.isConnectionUp).count == 1 }
        await b.shutdown()
        await waitUntil("connectionDown") { a.seenEvents.contains { $0.isConnectionDown } }
        b = try await TestNode.start("b", port: port, group: group)
        await waitUntil("second connectionUp") { a.seenEvents.filter(\.isConnectionUp).count == 2 }
        try await a.transport.send("after restart", to: b.id)
        await waitUntil("message after restart") { b.receivedCount == 1 }
        await a.shutdown()
        await b.shutdown()
    }
}
