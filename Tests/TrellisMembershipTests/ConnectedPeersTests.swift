import TrellisWire
import XCTest

@testable import TrellisMembership

final class ConnectedPeersTests: XCTestCase {
    func testPeersStayInOrderAsTheyComeAndGo() {
        var peers = ConnectedPeers()
        var random = SeededRandom(seed: 7)
        var expected: Set<PeerID> = []
        for _ in 0..<500 {
            let peer = PeerID(name: "n\(random.below(40))", host: "127.0.0.1", port: 7000)
            if random.below(3) == 0 {
                XCTAssertEqual(peers.remove(peer), expected.remove(peer) != nil)
            } else {
                peers.insert(peer)
                expected.insert(peer)
            }
            XCTAssertEqual(peers.inOrder, expected.sorted())
            XCTAssertEqual(peers.set, expected)
        }
    }
}
