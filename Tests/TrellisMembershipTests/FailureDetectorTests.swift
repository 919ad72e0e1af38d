import TrellisWire
import XCTest

@testable import TrellisMembership

final class FailureDetectorTests: XCTestCase {
    let a = PeerID(name: "a", host: "127.0.0.1", port: 1)
    let b = PeerID(name: "b", host: "127.0.0.1", port: 2)

    func testSilentPeerExpiresOnceAfterTheTimeout() {
        var detector = FailureDetector(timeout: 1_000)
        detector.watch(a, now: 0)
        detector.watch(b, now: 0)
        XCTAssertEqual(detector.expired(now: 1_000), [], "exactly the timeout is not yet silence")
        detector.heard(from: b, now: 900)
        XCTAssertEqual(detector.expired(now: 1_001), [a])
        XCTAssertEqual(detector.expired(now: 1_500), [], "a suspected peer is reported once")
        XCTAssertTrue(detector.isSuspected(a))
        XCTAssertEqual(detector.expired(now: 1_901), [b])
    }

    func testHearingFromASuspectedPeerIsARecovery() {
        var detector = FailureDetector(timeout: 100)
        detector.watch(a, now: 0)
        XCTAssertFalse(detector.heard(from: a, now: 50))
        XCTAssertEqual(detector.expired(now: 200), [a])
        XCTAssertTrue(detector.heard(from: a, now: 210))
        XCTAssertFalse(detector.isSuspected(a))
        XCTAssertEqual(detector.expired(now: 300), [])
        XCTAssertEqual(detector.expired(now: 311), [a])
    }

    /// Between walks through its peers the detector keeps only the earliest time it last heard
    /// from a peer not suspected; peers watched or recovering later still expire on time.
    func testEveryPeerExpiresOnTimeWhateverTheOrderOfEvents() {
        var detector = FailureDetector(timeout: 100)
        detector.watch(a, now: 0)
        XCTAssertEqual(detector.expired(now: 50), [])
        detector.watch(b, now: 60)
        detector.heard(from: a, now: 90)
        XCTAssertEqual(detector.expired(now: 101), [], "a heard at 90, b watched at 60")
        XCTAssertEqual(detector.expired(now: 160), [])
        XCTAssertEqual(detector.expired(now: 161), [b])
        XCTAssertTrue(detector.heard(from: b, now: 170))
        XCTAssertEqual(detector.expired(now: 190), [])
        XCTAssertEqual(detector.expired(now: 191), [a])
        XCTAssertEqual(detector.expired(now: 270), [])
        XCTAssertEqual(detector.expired(now: 271), [b], "recovered at 170")
    }

    func testUnwatchedPeersAreIgnored() {
        var detector = FailureDetector(timeout: 100)
        XCTAssertFalse(detector.heard(from: a, now: 0))
        detector.watch(a, now: 0)
        detector.unwatch(a)
        XCTAssertEqual(detector.expired(now: 1_000), [])
        XCTAssertEqual(detector.watched, [])
    }

    func testStaleHeartbeatsDoNotMoveTimeBackwards() {
        var detector = FailureDetector(timeout: 100)
        detector.watch(a, now: 500)
        detector.heard(from: a, now: 400)
        XCTAssertEqual(detector.expired(now: 550), [])
        XCTAssertEqual(detector.expired(now: 601), [a])
    }
}
