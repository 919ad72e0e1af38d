@testable import TrellisDiscovery
import TrellisWire
import XCTest

/// The checks on each gossip datagram, with times passed in.
final class GossipBeaconTests: XCTestCase {
    let me = PeerID(name: "me", host: "127.0.0.1", port: 7100)
    let a = PeerID(name: "a", host: "127.0.0.1", port: 7101)
    let key = GossipBeacon.key(cookie: "secret", clusterName: "prod")
    let now: UInt64 = 1_800_000_000_000

    func table() -> GossipTable {
        GossipTable(selfID: me, clusterName: "prod", key: key, window: 10_000, expiry: 3_000)
    }

    func beacon(_ peer: PeerID, at timestamp: UInt64, cluster: String = "prod", key: [UInt8]? = nil) -> [UInt8] {
        GossipBeacon(clusterName: cluster, peer: peer, timestamp: timestamp).encoded(key: key ?? self.key)
    }

    func testAFreshSignedBeaconIsAcceptedAndItsPeerFoundUntilItExpires() {
        var table = table()
        XCTAssertEqual(table.receive(beacon(a, at: now), now: now), .accepted(a))
        XCTAssertEqual(table.receive(beacon(me, at: now), now: now), .own)
        XCTAssertEqual(table.alive(now: now + 3_000), [a])
        XCTAssertEqual(table.alive(now: now + 3_001), [])
        XCTAssertEqual(table.stats.accepted, 1)
    }

    func testStrangersOtherClustersAndForgeriesAreIgnored() {
        var table = table()
        var tampered = beacon(a, at: now)
        tampered[tampered.count - 1] ^= 1
        let otherKey = GossipBeacon.key(cookie: "secret", clusterName: "staging")
        XCTAssertNotEqual(otherKey, key, "the same cookie gives each cluster its own key")
        XCTAssertEqual(table.receive(beacon(a, at: now, cluster: "staging", key: otherKey), now: now), .otherCluster)
        XCTAssertEqual(table.receive(beacon(a, at: now, key: GossipBeacon.key(cookie: "guess", clusterName: "prod")), now: now), .badSignature)
        XCTAssertEqual(table.receive(tampered, now: now), .badSignature)
        // A signed beacon whose cluster name was swapped fails its signature too.
        var renamed = beacon(a, at: now, cluster: "proe")
        renamed[13..<17] = ArraySlice("prod".utf8)
        XCTAssertEqual(table.receive(renamed, now: now), .badSignature)
        XCTAssertEqual(table.alive(now: now), [])
        XCTAssertEqual(table.stats, { var s = GossipStats(); s.otherCluster = 1; s.badSignature = 3; return s }())
    }

    func testBeaconsOutsideTheWindowAndReplaysAreRefused() {
        var table = table()
        XCTAssertEqual(table.receive(beacon(a, at: now - 10_001), now: now), .stale)
        XCTAssertEqual(table.receive(beacon(a, at: now + 10_001), now: now), .stale)
        let fresh = beacon(a, at: now - 500)
        XCTAssertEqual(table.receive(fresh, now: now), .accepted(a))
        XCTAssertEqual(table.receive(fresh, now: now + 100), .replayed)
        XCTAssertEqual(table.receive(beacon(a, at: now - 600), now: now + 100), .replayed, "older than the last one")
        XCTAssertEqual(table.receive(beacon(a, at: now + 1_000), now: now + 1_000), .accepted(a))
        // Long after `a` expired, its old beacon is outside the window: still refused.
        XCTAssertEqual(table.alive(now: now + 60_000), [])
        XCTAssertEqual(table.receive(fresh, now: now + 60_000), .stale)
    }

    func testMalformedDatagramsAreCountedNotTrusted() {
        var table = table()
        let valid = beacon(a, at: now)
        var badMagic = valid
        badMagic[0] = 0x58
        var badLength = valid
        badLength[12] = 200
        let badID = GossipBeacon(clusterName: "prod", peer: PeerID(name: "no", host: "", port: 1), timestamp: now).encoded(key: key)
        for datagram in [[], Array(valid.prefix(40)), badMagic, badLength, badID, valid + [0]] {
            XCTAssertEqual(table.receive(datagram, now: now), .malformed)
        }
        XCTAssertEqual(table.stats.malformed, 6)
    }

    /// Corrupted and cut beacons: each gets a verdict, none traps, none is accepted.
    func testCorruptedBeaconsNeverTrapOrPass() {
        var table = table()
        var random = SeededRandom(seed: 9)
        let valid = beacon(a, at: now)
        for _ in 0..<3_000 {
            var bytes = valid
            bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            if Bool.random(using: &random) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random))) }
            XCTAssertNotEqual(table.receive(bytes, now: now), .accepted(a))
        }
    }
}
