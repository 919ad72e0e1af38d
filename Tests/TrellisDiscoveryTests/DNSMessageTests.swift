@testable import TrellisDiscovery
import TrellisWire
import XCTest

final class DNSMessageTests: XCTestCase {
    /// dnsmasq 2.90's reply to SRV `_trellis._tcp.trellis.test` (id 0x1234): two targets on
    /// ports 7102 and 7101, their A records in the additional section, names compressed.
    static let dnsmasqSRVReply = hex(
        "123485800001000200000002085f7472656c6c6973045f746370077472656c6c697304746573740000210001"
            + "c00c00210001000000000017000000001bbe026e32077472656c6c6973047465737400"
            + "c00c00210001000000000017000000001bbd026e31077472656c6c6973047465737400"
            + "c061000100010000000000047f000001c03e000100010000000000047f000001")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    func testAQueryHasTheQuestionAndAnEDNSRecord() throws {
        let query = try DNSWire.query(id: 0xBEEF, name: "Peers.Trellis.test.", type: .srv, udpPayloadSize: 1232)
        XCTAssertEqual(Array(query[0..<12]), [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1])
        XCTAssertEqual(Array(query[12..<32]), [5] + Array("Peers".utf8) + [7] + Array("Trellis".utf8) + [4] + Array("test".utf8) + [0])
        XCTAssertEqual(Array(query[32..<36]), [0, 33, 0, 1])
        XCTAssertEqual(Array(query[36...]), [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0])
        let plain = try DNSWire.query(id: 1, name: "a.b", type: .a, udpPayloadSize: nil)
        XCTAssertEqual(plain.count, 12 + 5 + 4)
    }

    func testInvalidNamesAreRefusedWithTheReason() {
        let cases = ["", "a..b", String(repeating: "x", count: 64) + ".test", "white space.test", "ünï.test",
                     Array(repeating: "abcdefghi", count: 26).joined(separator: ".")]
        for name in cases {
            XCTAssertThrowsError(try DNSWire.encode(name: name), name) { error in
                guard case .invalidName(let bad, _) = error as? DNSError else { return XCTFail("\(error)") }
                XCTAssertEqual(bad, name)
            }
        }
    }

    func testParsesARealSRVReplyWithCompressedNames() throws {
        let reply = try DNSWire.parse(Self.dnsmasqSRVReply)
        XCTAssertEqual(reply.id, 0x1234)
        XCTAssertEqual(reply.rcode, 0)
        XCTAssertFalse(reply.truncated)
        XCTAssertEqual(reply.question?.name, "_trellis._tcp.trellis.test")
        XCTAssertEqual(reply.question?.type, 33)
        XCTAssertEqual(reply.answers.map(\.data), [
            .srv(priority: 0, weight: 0, port: 7102, target: "n2.trellis.test"),
            .srv(priority: 0, weight: 0, port: 7101, target: "n1.trellis.test"),
        ])
        XCTAssertEqual(reply.addresses(of: "n1.trellis.test"), ["127.0.0.1"])
        XCTAssertEqual(reply.addresses(of: "n2.trellis.test"), ["127.0.0.1"])
        XCTAssertEqual(reply.addresses(of: "n3.trellis.test"), [])
    }

    func testAddressesFollowCNAMEs() throws {
        var bytes = header(answers: 3) + question("svc.test", type: 1)
        bytes += record(pointer: 12, type: 5, data: name("real.test"))  // svc.test CNAME real.test
        bytes += record(name: name("real.test"), type: 1, data: [10, 0, 0, 7])
        bytes += record(name: name("other.test"), type: 28, data: [0xFD] + Array(repeating: 0, count: 14) + [1])
        let reply = try DNSWire.parse(bytes)
        XCTAssertEqual(reply.addresses(of: "svc.test"), ["10.0.0.7"])
        XCTAssertEqual(reply.addresses(of: "other.test"), ["fd00::1"])
    }

    func testIPv6AddressesAreWrittenAsRFC5952Says() {
        func text(_ groups: [UInt16]) -> String {
            IPText.v6(ArraySlice(groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }))
        }
        XCTAssertEqual(text([0, 0, 0, 0, 0, 0, 0, 1]), "::1")
        XCTAssertEqual(text([0, 0, 0, 0, 0, 0, 0, 0]), "::")
        XCTAssertEqual(text([0x2001, 0xDB8, 0, 0, 1, 0, 0, 1]), "2001:db8::1:0:0:1")
        XCTAssertEqual(text([0x2001, 0xDB8, 0, 1, 1, 1, 1, 1]), "2001:db8:0:1:1:1:1:1")
        XCTAssertEqual(text([0xFD00, 0xA, 0, 0, 0, 0, 0xBEEF, 0]), "fd00:a::beef:0")
    }

    func testMalformedRepliesThrowTypedErrors() {
        let aQuestion = header(answers: 1) + question("a.test", type: 1)
        let longName: [UInt8] = Array(repeating: [63] + Array(repeating: 0x61, count: 63), count: 5).flatMap { $0 }
        let loop = header(answers: 1) + question("a.test", type: 1) + [0xC0, 24] + [0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4]
        let forward = header(answers: 1) + question("a.test", type: 1) + [0xC0, 60] + Array(repeating: 0, count: 40)
        let cases: [(String, [UInt8])] = [
            ("too short", [0x12, 0x34, 0x81]),
            ("a query", Array(header(answers: 0)[0..<2]) + [0x01, 0x00] + Array(header(answers: 0)[4...])),
            ("self pointer", loop),
            ("forward pointer", forward),
            ("A of 3 bytes", aQuestion + record(pointer: 12, type: 1, data: [1, 2, 3])),
            ("rdata past the end", aQuestion + Array(record(pointer: 12, type: 1, data: [1, 2, 3, 4]).dropLast())),
            ("SRV too short", header(answers: 1) + question("a.test", type: 33) + record(pointer: 12, type: 33, data: [0, 0, 0])),
            ("extended label", header(answers: 0, questions: 1) + [0x41, 0, 0, 1, 0, 1]),
            ("name over 255", header(answers: 0, questions: 1) + longName + [0, 0, 1, 0, 1]),
            ("missing record", header(answers: 2) + question("a.test", type: 1) + record(pointer: 12, type: 1, data: [1, 2, 3, 4])),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try DNSWire.parse(bytes), what) { error in
                guard case .malformed = error as? DNSError else { return XCTFail("\(what): \(error)") }
            }
        }
    }

    /// Thousands of corrupted and cut replies: each parses or throws, none traps.
    func testCorruptedRepliesNeverTrap() {
        var random = SeededRandom(seed: 42)
        let valid = Self.dnsmasqSRVReply
        var outcomes = (parsed: 0, malformed: 0)
        for _ in 0..<5_000 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            if Bool.random(using: &random) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random))) }
            do {
                _ = try DNSWire.parse(bytes)
                outcomes.parsed += 1
            } catch {
                outcomes.malformed += 1
            }
        }
        XCTAssertGreaterThan(outcomes.malformed, 1_000)
        XCTAssertGreaterThan(outcomes.parsed, 100)
    }

    // MARK: Building replies

    func header(answers: UInt16, questions: UInt16 = 1) -> [UInt8] {
        [0x12, 0x34, 0x81, 0x80, 0, UInt8(questions), UInt8(answers >> 8), UInt8(answers & 0xFF), 0, 0, 0, 0]
    }

    func name(_ text: String) -> [UInt8] {
        text.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    func question(_ text: String, type: UInt16) -> [UInt8] {
        name(text) + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    }

    func record(name: [UInt8], type: UInt16, data: [UInt8]) -> [UInt8] {
        name + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1, 0, 0, 0, 60, UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
    }

    func record(pointer: UInt8, type: UInt16, data: [UInt8]) -> [UInt8] {
        record(name: [0xC0, pointer], type: type, data: data)
    }
}
