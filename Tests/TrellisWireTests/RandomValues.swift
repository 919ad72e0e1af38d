import TrellisWire

/// Random values of the whole model, nested up to `depth`.
func randomValue(_ rng: inout SeededRandom, depth: Int = 4) -> Value {
    let kind = Int.random(in: 0..<(depth > 0 ? 9 : 7), using: &rng)
    switch kind {
    case 0: return .nil
    case 1: return .bool(Bool.random(using: &rng))
    case 2: return .int(randomInt(&rng))
    case 3:
        let d = Double(bitPattern: rng.next())
        return .float(d.isNaN ? 0.5 : d)
    case 4: return .string(String((0..<Int.random(in: 0..<24, using: &rng)).map { _ in randomCharacter(&rng) }))
    case 5: return .bytes((0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
    case 6: return .int(Int64.random(in: -40...300, using: &rng))
    case 7: return .array((0..<Int.random(in: 0..<6, using: &rng)).map { _ in randomValue(&rng, depth: depth - 1) })
    default:
        var entries: [Value.MapEntry] = []
        var seen: Set<Value> = []
        for _ in 0..<Int.random(in: 0..<6, using: &rng) {
            let key: Value = Bool.random(using: &rng) ? .int(randomInt(&rng)) : .string("k\(rng.next() % 1000)")
            guard seen.insert(key).inserted else { continue }
            entries.append(Value.MapEntry(key, randomValue(&rng, depth: depth - 1)))
        }
        return .map(entries.sorted(by: Value.canonicalKeyOrder))
    }
}

private func randomInt(_ rng: inout SeededRandom) -> Int64 {
    let magnitude = [Int64(0x7f), 0xff, 0xffff, 0xffff_ffff, .max].randomElement(using: &rng)!
    return Int64.random(in: -magnitude...magnitude, using: &rng)
}

private func randomCharacter(_ rng: inout SeededRandom) -> Character {
    let pools: [ClosedRange<UInt32>] = [0x20...0x7e, 0xa0...0x2ff, 0x4e00...0x4fff, 0x1f600...0x1f64f]
    let scalar = UInt32.random(in: pools.randomElement(using: &rng)!, using: &rng)
    return Character(Unicode.Scalar(scalar)!)
}
