import TrellisLua
import TrellisWire
import XCTest

@testable import TrellisMembership

/// An overlay written in Swift, so the core's bookkeeping can be tested on its own.
final class ScriptedOverlay: OverlayStrategy {
    let fileName = "scripted.lua"
    var tickInterval: Int? = 1_000
    var calls: [String] = []
    var next = OverlayOutcome(members: nil, messages: [])
    var failure: ScriptError?

    private func answer(_ call: String) throws(ScriptError) -> OverlayOutcome {
        calls.append(call)
        if let failure { throw failure }
        return next
    }

    func start(_ ctx: OverlayContext) throws(ScriptError) -> [String]? { calls.append("init"); return nil }
    func join(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome { try answer("join \(peer)") }
    func leave(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome { try answer("leave \(peer)") }
    func receive(_ message: EncodedValue, from peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try answer("on_message \(peer)")
    }
    func tick(now: Int64) throws(ScriptError) -> OverlayOutcome { try answer("on_tick \(now)") }
    func connectionUp(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome { try answer("on_up \(peer)") }
    func connectionDown(_ peer: String, reason: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try answer("on_down \(peer) \(reason)")
    }
}

final class MembershipCoreTests: XCTestCase {
    let me = PeerID(name: "me", host: "127.0.0.1", port: 1)
    let a = PeerID(name: "a", host: "127.0.0.1", port: 2)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 3)
    let c = PeerID(name: "c", host: "127.0.0.1", port: 4)

    func makeCore(_ overlay: ScriptedOverlay) -> MembershipCore {
        let settings = MembershipSettings(heartbeatInterval: 100, failureTimeout: 500, defaultTickInterval: 1_000)
        return MembershipCore.start(selfID: me, strategy: overlay, config: .nil, settings: settings, now: 0).0
    }

    func testNewMembersAreConnectedAndDepartedOnesDropped() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        overlay.next = OverlayOutcome(members: [a.description, b.description], messages: [])
        XCTAssertEqual(core.handle(.join(a), now: 1), [.memberUp(a), .connect(a), .memberUp(b), .connect(b)])
        XCTAssertEqual(core.members, [a, b, me].sorted())

        overlay.next = OverlayOutcome(members: [b.description], messages: [])
        XCTAssertEqual(core.handle(.message(.nil, from: b), now: 2), [.memberDown(a), .disconnect(a)])
        XCTAssertEqual(core.members, [b, me].sorted(), "self is always a member")
    }

    func testMessagesBecomeSendsAndBadPeerIdsAreReported() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        overlay.next = OverlayOutcome(
            members: nil,
            messages: [.init(to: a.description, message: "hi"), .init(to: "nonsense", message: 1)]
        )
        let directives = core.handle(.join(a), now: 1)
        XCTAssertEqual(directives.first, .send("hi", to: a))
        guard case .scriptFailed(let error) = directives.last else { return XCTFail("\(directives)") }
        XCTAssertTrue(error.description.contains("nonsense"), error.description)
        XCTAssertEqual(core.scriptErrors, 1)
    }

    func testAFailingCallbackLeavesMembersInForce() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        overlay.next = OverlayOutcome(members: [a.description], messages: [])
        _ = core.handle(.join(a), now: 1)
        overlay.failure = ScriptError(.runtime, file: "x.lua", line: 3, callback: "on_message", message: "boom")
        let directives = core.handle(.message(.nil, from: a), now: 2)
        XCTAssertEqual(directives.count, 1)
        XCTAssertEqual(core.members, [a, me].sorted())
        XCTAssertEqual(core.scriptErrors, 1)
    }

    func testHeartbeatsGoToConnectedPeersAndSilenceIsReported() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        overlay.next = OverlayOutcome(members: [a.description], messages: [])
        _ = core.handle(.join(a), now: 0)
        overlay.next = OverlayOutcome(members: nil, messages: [])
        _ = core.handle(.connectionUp(a), now: 10)
        XCTAssertEqual(overlay.calls.last, "on_up \(a)")
        XCTAssertEqual(core.handle(.timer, now: 100), [.sendHeartbeat(to: a)])
        _ = core.handle(.heartbeatAck(from: a), now: 102)
        XCTAssertEqual(core.handle(.timer, now: 550), [.sendHeartbeat(to: a)], "heard at 102: not silent yet")
        _ = core.handle(.timer, now: 603)
        XCTAssertEqual(overlay.calls.last, "on_down \(a) heartbeat timeout")
        _ = core.handle(.heartbeatAck(from: a), now: 700)
        XCTAssertEqual(overlay.calls.last, "on_up \(a)", "a suspected peer that answers again is up again")
    }

    func testALostConnectionIsReportedAtOnceAndTicksRunOnTheirPeriod() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        _ = core.handle(.connectionUp(b), now: 5)
        _ = core.handle(.connectionDown(b, reason: "connection lost"), now: 6)
        XCTAssertEqual(overlay.calls.last, "on_down \(b) connection lost")
        XCTAssertEqual(core.connected, [])
        _ = core.handle(.connectionDown(b, reason: "connection lost"), now: 7)
        XCTAssertEqual(overlay.calls.filter { $0.hasPrefix("on_down") }.count, 1, "an unknown peer is not reported twice")
        _ = core.handle(.timer, now: 999)
        XCTAssertFalse(overlay.calls.contains { $0.hasPrefix("on_tick") })
        _ = core.handle(.timer, now: 1_000)
        XCTAssertEqual(overlay.calls.last, "on_tick 1000")
        XCTAssertEqual(core.nextDeadline, 1_100)
    }

    func testAnUnreachablePeerThatWasOnlySentToIsReportedDown() {
        let overlay = ScriptedOverlay()
        var core = makeCore(overlay)
        overlay.next = OverlayOutcome(members: nil, messages: [.init(to: a.description, message: "neighbor?")])
        _ = core.handle(.join(b), now: 1)
        overlay.next = .unchanged
        _ = core.handle(.connectionDown(a, reason: "connection refused"), now: 2)
        XCTAssertEqual(overlay.calls.last, "on_down \(a) connection refused")
        _ = core.handle(.connectionDown(a, reason: "connection refused"), now: 3)
        XCTAssertEqual(overlay.calls.filter { $0.hasPrefix("on_down") }.count, 1, "reported once")
    }

    /// A core that closes connections idle for 2 s, with the scripted overlay it runs.
    private func coreClosingIdleConnections() -> (ScriptedOverlay, MembershipCore) {
        let overlay = ScriptedOverlay()
        let settings = MembershipSettings(heartbeatInterval: 100, failureTimeout: 5_000, defaultTickInterval: 1_000, idleConnectionTimeout: 2_000)
        return (overlay, MembershipCore.start(selfID: me, strategy: overlay, config: .nil, settings: settings, now: 0).0)
    }

    func testIdleConnectionsToNonMembersAreClosedButMembersStay() {
        var (overlay, core) = coreClosingIdleConnections()
        overlay.next = OverlayOutcome(members: [b.description], messages: [.init(to: a.description, message: "shuffle reply")])
        _ = core.handle(.join(b), now: 0)
        overlay.next = .unchanged
        _ = core.handle(.connectionUp(a), now: 1)
        _ = core.handle(.connectionUp(b), now: 1)
        XCTAssertFalse(core.handle(.timer, now: 1_999).contains(.disconnect(a)), "not idle yet")
        XCTAssertTrue(core.handle(.timer, now: 2_001).contains(.disconnect(a)))
        XCTAssertEqual(core.connected, [b], "a member's connection stays")
    }

    /// Each message sent to a non-member starts its idle time again; a connection nothing was
    /// ever sent on is idle at once.
    func testIdleDeadlinesFollowEverySendAndEveryConnection() {
        var (overlay, core) = coreClosingIdleConnections()
        overlay.next = OverlayOutcome(members: nil, messages: [.init(to: a.description, message: "hello")])
        _ = core.handle(.join(b), now: 0)
        _ = core.handle(.connectionUp(a), now: 1)
        XCTAssertFalse(core.handle(.timer, now: 100).contains(.disconnect(a)), "sent to at 0: not idle before 2,000")
        overlay.next = OverlayOutcome(members: nil, messages: [.init(to: a.description, message: "again")])
        _ = core.handle(.message("ping", from: b), now: 1_500)
        overlay.next = .unchanged
        XCTAssertFalse(core.handle(.timer, now: 2_001).contains(.disconnect(a)), "sent to again at 1,500")
        XCTAssertTrue(core.handle(.timer, now: 3_501).contains(.disconnect(a)))
        _ = core.handle(.connectionUp(c), now: 3_600)
        XCTAssertTrue(core.handle(.timer, now: 3_700).contains(.disconnect(c)), "never sent to: idle at once")
    }

    func testAPeerSentToButNeverConnectedIsForgottenOnceIdle() {
        var (overlay, core) = coreClosingIdleConnections()
        overlay.next = OverlayOutcome(members: nil, messages: [.init(to: a.description, message: "hello")])
        _ = core.handle(.join(b), now: 0)
        overlay.next = .unchanged
        _ = core.handle(.timer, now: 2_001)
        _ = core.handle(.connectionDown(a, reason: "connection refused"), now: 2_002)
        XCTAssertFalse(overlay.calls.contains { $0.hasPrefix("on_down") }, "forgotten: its connection failing is no news")
    }
}
