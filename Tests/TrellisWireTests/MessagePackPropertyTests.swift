import NIOCore
import XCTest

@testable import TrellisWire

/// Property tests: every value round-trips, and no byte sequence makes the decoder trap.
final class MessagePackPropertyTests: XCTestCase {
    func testRandomValuesRoundTrip() throws {
        var rng = SeededRandom(seed: 0x7E11_1500)
        for round in 0..<20_000 {
            let value = randomValue(&rng)
            let bytes = MessagePack.encode(value)
            XCTAssertEqual(try MessagePack.decode(bytes), value, "round \(round)")
        }
    }

    /// 120,000 mutated encodings: bit flips, truncations, insertions, splices and length
    /// fields set to huge numbers. Each either decodes or throws a `WireError`.
    func testMutatedInputsNeverTrap() {
        var rng = SeededRandom(seed: 0xBAD_F00D)
        var decoded = 0
        var rejected = 0
        for _ in 0..<120_000 {
            var bytes = MessagePack.encode(randomValue(&rng, depth: 3))
            mutate(&bytes, &rng)
            do {
                let value = try MessagePack.decode(bytes)
                XCTAssertEqual(try MessagePack.decode(MessagePack.encode(value)), value)
                decoded += 1
            } catch {
                rejected += 1
            }
        }
        XCTAssertEqual(decoded + rejected, 120_000)
        XCTAssertGreaterThan(rejected, 10_000, "mutations should break most inputs")
    }

    func testRandomBytesNeverTrap() {
        var rng = SeededRandom(seed: 42)
        for _ in 0..<50_000 {
            let bytes = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? MessagePack.decode(bytes)
        }
    }

    private func mutate(_ bytes: inout [UInt8], _ rng: inout SeededRandom) {
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:
                bytes.removeLast(Int.random(in: 1...bytes.count, using: &rng))
            case 2:
                bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
            case 3 where !bytes.isEmpty:
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.replaceSubrange(at..<min(at + 5, bytes.count), with: [0xdd, 0xff, 0xff, 0xff, 0xff])
            default:
                bytes += bytes.prefix(Int.random(in: 0...8, using: &rng))
            }
        }
    }
}
