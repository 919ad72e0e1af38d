import XCTest

@testable import TrellisTopology

/// `--live HOST:PORT`: which addresses are read, and which count as loopback.
final class LiveViewAddressTests: XCTestCase {
    func testHostAndPortPortAloneAndBracketedIPv6AreRead() throws {
        XCTAssertEqual(try LiveViewAddress(parsing: "127.0.0.1:8080"), LiveViewAddress(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(try LiveViewAddress(parsing: "9000"), LiveViewAddress(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try LiveViewAddress(parsing: "[::1]:0"), LiveViewAddress(host: "::1", port: 0))
        XCTAssertEqual(try LiveViewAddress(parsing: "localhost:1").description, "localhost:1")
        XCTAssertEqual(LiveViewAddress(host: "::1", port: 80).description, "[::1]:80")
    }

    func testMalformedAddressesAreRefusedWithTheFormToUse() {
        for text in ["", "127.0.0.1:", ":80", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1", "a b:80"] {
            XCTAssertThrowsError(try LiveViewAddress(parsing: text), text) { error in
                XCTAssertEqual(error as? PictureError, .badAddress(text))
                XCTAssertTrue("\(error)".contains("HOST:PORT"), "\(error)")
            }
        }
    }

    func testOnlyLoopbackCountsAsLoopback() throws {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            XCTAssertTrue(LiveViewAddress(host: host, port: 1).isLoopback, host)
        }
        for host in ["0.0.0.0", "192.168.1.2", "::", "example.org"] {
            XCTAssertFalse(LiveViewAddress(host: host, port: 1).isLoopback, host)
        }
        XCTAssertTrue("\(PictureError.notLoopback(host: "0.0.0.0"))".contains("--live-public"))
    }
}
