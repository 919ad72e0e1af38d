import TOMLKit

/// Where errors are reported: the file as given and the line of every key in it.
struct TopologyContext {
    let file: String
    let source: TopologySourceMap

    func error(
        _ kind: TopologyError.Kind, at path: TopologyKeyPath, _ problem: String, fix: String
    ) -> TopologyError {
        TopologyError(
            kind: kind, file: file, line: source.line(of: path), key: path.description,
            problem: problem, fix: fix)
    }
}

/// Typed, located access to one TOML table of a topology file.
///
/// Every accessor returns `nil` for an absent key and throws a ``TopologyError`` naming the
/// key's line when the value has the wrong type, so callers only decide on defaults and ranges.
struct TopologyTableReader {
    let table: TOMLTable
    let path: TopologyKeyPath
    let context: TopologyContext

    /// Refuses keys outside `allowed`, suggesting the closest allowed key for typos.
    func allowOnly(_ allowed: [String]) throws(TopologyError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            let list = allowed.joined(separator: ", ")
            let fix = closest(to: key, in: allowed).map { "Did you mean `\($0)`? Keys allowed here: \(list)" }
                ?? "Remove it; keys allowed here: \(list)"
            throw context.error(.unknownKey, at: path.appending(key), "unknown key", fix: fix)
        }
    }

    func error(_ kind: TopologyError.Kind, _ key: String, _ problem: String, fix: String) -> TopologyError {
        context.error(kind, at: path.appending(key), problem, fix: fix)
    }

    func has(_ key: String) -> Bool { table[key] != nil }

    /// The value of a required key.
    func require<T>(_ value: T?, _ key: String, example: String) throws(TopologyError) -> T {
        guard let value else {
            let location = path.components.isEmpty ? "at the top of the file" : "in [\(path)]"
            throw context.error(.missingKey, at: path.appending(key), "missing required key", fix: "Add `\(example)` \(location)")
        }
        return value
    }

    func string(_ key: String, example: String) throws(TopologyError) -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else { throw typeError(key, value, expected: .string, example: example) }
        return string
    }

    func bool(_ key: String, example: String) throws(TopologyError) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let bool = value.bool else { throw typeError(key, value, expected: .bool, example: example) }
        return bool
    }

    func int(_ key: String, example: String) throws(TopologyError) -> Int? {
        guard let value = table[key] else { return nil }
        guard let int = value.int else { throw typeError(key, value, expected: .int, example: example) }
        return int
    }

    func table(_ key: String, example: String) throws(TopologyError) -> TopologyTableReader? {
        guard let value = table[key] else { return nil }
        guard let table = value.table else { throw typeError(key, value, expected: .table, example: example) }
        return TopologyTableReader(table: table, path: path.appending(key), context: context)
    }

    func stringArray(_ key: String, example: String) throws(TopologyError) -> [String]? {
        guard let value = table[key] else { return nil }
        guard let array = value.array else { throw typeError(key, value, expected: .array, example: example) }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else {
                throw error(.wrongType, key, "expected an array of strings, got \(describe(element.type)) in it", fix: "Write it like `\(example)`")
            }
            strings.append(string)
        }
        return strings
    }

    /// A number, written as an integer or a float.
    func number(_ key: String, example: String) throws(TopologyError) -> Double? {
        guard let value = table[key] else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double else { throw typeError(key, value, expected: .double, example: example) }
        return double
    }

    /// An array of arrays of strings (`groups = [["a", "b"], ["c"]]`).
    func stringArrays(_ key: String, example: String) throws(TopologyError) -> [[String]]? {
        guard let value = table[key] else { return nil }
        let problem = "expected an array of arrays of strings"
        guard let array = value.array else { throw error(.wrongType, key, "\(problem), got \(describe(value.type))", fix: "Write it like `\(example)`") }
        var result: [[String]] = []
        for element in array {
            guard let inner = element.array else {
                throw error(.wrongType, key, "\(problem), got \(describe(element.type)) in it", fix: "Write it like `\(example)`")
            }
            var strings: [String] = []
            for item in inner {
                guard let string = item.string else {
                    throw error(.wrongType, key, "\(problem), got \(describe(item.type)) in it", fix: "Write it like `\(example)`")
                }
                strings.append(string)
            }
            result.append(strings)
        }
        return result
    }

    /// An array of tables (`[[schedule]]`); an empty array when absent.
    func tables(_ key: String, example: String) throws(TopologyError) -> [TopologyTableReader] {
        guard let value = table[key] else { return [] }
        let fix = "Write each entry as a `[[\(key)]]` table, e.g. \(example)"
        guard let array = value.array else {
            throw error(.wrongType, key, "expected an array of tables, got \(describe(value.type))", fix: fix)
        }
        var readers: [TopologyTableReader] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                throw error(.wrongType, key, "expected an array of tables, got \(describe(element.type)) in it", fix: fix)
            }
            readers.append(TopologyTableReader(table: table, path: path.appending(key).appending(index: index), context: context))
        }
        return readers
    }

    /// A duration in milliseconds: a string with a unit (`"5s"`) or an integer of milliseconds.
    func duration(_ key: String) throws(TopologyError) -> Int? {
        guard let value = table[key] else { return nil }
        let fix = "Write a duration like `\(key) = \"250ms\"`, `\"5s\"`, `\"2m\"` or whole milliseconds like `\(key) = 250`"
        if let ms = value.int {
            guard ms >= 0 else { throw error(.invalidValue, key, "a duration can't be negative", fix: fix) }
            return ms
        }
        guard let text = value.string else {
            throw error(.wrongType, key, "expected a duration string or integer milliseconds, got \(describe(value.type))", fix: fix)
        }
        guard let ms = TopologyDuration.milliseconds(text) else {
            throw error(.invalidValue, key, "`\(text)` is not a duration", fix: fix)
        }
        return ms
    }

    /// A string that must be one of `choices`.
    func choice(_ key: String, _ choices: [String]) throws(TopologyError) -> String? {
        let list = choices.map { "\"\($0)\"" }.joined(separator: ", ")
        guard let text = try string(key, example: "\(key) = \"\(choices[0])\"") else { return nil }
        guard choices.contains(text) else {
            throw error(.invalidValue, key, "unknown value \"\(text)\"", fix: "Use one of \(list)")
        }
        return text
    }

    private func typeError(_ key: String, _ value: TOMLValueConvertible, expected: TOMLType, example: String) -> TopologyError {
        let hint: String
        switch expected {
        case .int: hint = "Write a whole number, e.g. `\(example)`"
        case .string: hint = "Write a quoted string, e.g. `\(example)`"
        default: hint = "Write it like `\(example)`"
        }
        return error(.wrongType, key, "expected \(describe(expected)), got \(describe(value.type))", fix: hint)
    }
}

/// A TOML type with its article, as used in messages: "an integer", "a string".
func describe(_ type: TOMLType) -> String {
    switch type {
    case .table: return "a table"
    case .array: return "an array"
    case .string: return "a string"
    case .int: return "an integer"
    case .double: return "a floating-point number"
    case .bool: return "a boolean"
    case .date: return "a date"
    case .time: return "a time"
    case .dateTime: return "a date-time"
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
func closest(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
    return best.0
}

private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        previous = current
    }
    return previous[b.count]
}

extension TopologyTableReader {
    /// The root table of the TOML document `text`; `path` names it in errors.
    ///
    /// - Throws: a syntax error with the line and column TOMLKit reports.
    init(document text: String, path: String) throws(TopologyError) {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TopologyError(
                kind: .syntax, file: path, line: error.source.begin.line, column: error.source.begin.column,
                problem: error.description, fix: "Fix the TOML syntax at this position")
        } catch {
            throw TopologyError(kind: .syntax, file: path, problem: "\(error)", fix: "Fix the TOML syntax")
        }
        self.init(table: root, path: .root, context: TopologyContext(file: path, source: TopologySourceMap(text)))
    }
}
