import TOMLKit
import TrellisWire

/// Durations as written in topology files: `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`.
enum TopologyDuration {
    /// The longest duration accepted: one day.
    static let maximumMs = 86_400_000

    /// The duration in whole milliseconds, or `nil` if `text` is malformed, not a whole number
    /// of milliseconds, or longer than ``maximumMs``.
    static func milliseconds(_ text: String) -> Int? {
        let units: [(suffix: String, factor: Int)] = [("ms", 1), ("s", 1000), ("m", 60_000)]
        guard let unit = units.first(where: { text.hasSuffix($0.suffix) }) else { return nil }
        let number = text.dropLast(unit.suffix.count)
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let whole = Int(parts[0]), whole <= maximumMs
        else { return nil }
        var ms = whole * unit.factor
        if parts.count == 2 {
            // Fractions must come out as whole milliseconds: "1.5s" is fine, "1.5ms" is not.
            guard parts[1].count <= 3 else { return nil }
            let scale = [1, 10, 100, 1000][parts[1].count]
            guard let fraction = Int(parts[1]), (fraction * unit.factor) % scale == 0 else { return nil }
            ms += fraction * unit.factor / scale
        }
        return ms <= maximumMs ? ms : nil
    }
}

/// Loopback addresses: everything in 127.0.0.0/8, and `::1`.
enum TopologyHost {
    static func isLoopback(_ host: String) -> Bool {
        if host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        let values = octets.compactMap { octet -> Int? in
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            return Int(octet).flatMap { $0 <= 255 ? $0 : nil }
        }
        return values.count == 4 && values[0] == 127
    }
}

/// Converts TOML values into the script contract's ``Value`` for `ctx.config`.
enum TopologyConfig {
    /// Tables become string-keyed `.map`s, arrays `.array`s, integers `.int`, floats `.float`.
    /// TOML dates and times have no `Value` counterpart and are refused.
    static func value(
        of toml: TOMLValueConvertible, at path: TopologyKeyPath, context: TopologyContext
    ) throws(TopologyError) -> Value {
        if let table = toml.table {
            var fields: [String: Value] = [:]
            for key in table.keys {
                guard let element = table[key] else { continue }
                fields[key] = try value(of: element, at: path.appending(key), context: context)
            }
            return .map(fields)
        }
        if let array = toml.array {
            var elements: [Value] = []
            for (index, element) in array.enumerated() {
                elements.append(try value(of: element, at: path.appending(index: index), context: context))
            }
            return .array(elements)
        }
        if let string = toml.string { return .string(string) }
        if let int = toml.int { return .int(Int64(int)) }
        if let double = toml.double { return .float(double) }
        if let bool = toml.bool { return .bool(bool) }
        throw context.error(
            .wrongType, at: path, "\(describe(toml.type)) can't be passed to an overlay script",
            fix: "Quote it to pass it as a string, e.g. \"2024-01-31\"")
    }
}
