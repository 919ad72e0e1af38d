import Foundation

/// A path to a value in a topology document, like `nodes.tags_by_node.n1` or `schedule[1].at`.
struct TopologyKeyPath: Hashable, CustomStringConvertible {
    enum Component: Hashable {
        case key(String)
        /// A 0-based index into an array of tables.
        case index(Int)
    }

    var components: [Component] = []

    static let root = TopologyKeyPath()

    func appending(_ key: String) -> TopologyKeyPath {
        TopologyKeyPath(components: components + [.key(key)])
    }

    func appending(index: Int) -> TopologyKeyPath {
        TopologyKeyPath(components: components + [.index(index)])
    }

    var parent: TopologyKeyPath? {
        components.isEmpty ? nil : TopologyKeyPath(components: Array(components.dropLast()))
    }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key):
                let bare = !key.isEmpty && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
                if !text.isEmpty { text += "." }
                text += bare ? key : "\"\(key)\""
            case .index(let index):
                text += "[\(index)]"
            }
        }
        return text
    }
}

/// The line on which each key and table header of a TOML text is written.
///
/// TOMLKit does not expose source positions, so this scans the text line by line, tracking the
/// current `[table]` / `[[array]]` header. It understands bare, quoted and dotted keys and skips
/// comments and multi-line strings; keys inside inline tables map to the line of the inline table.
struct TopologySourceMap {
    private var lines: [TopologyKeyPath: Int] = [:]

    init(_ text: String) {
        var section = TopologyKeyPath.root
        var arrayCounts: [TopologyKeyPath: Int] = [:]
        var openQuote: Substring?
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = offset + 1
            if let quote = openQuote {
                if rawLine.components(separatedBy: quote).count % 2 == 0 { openQuote = nil }
                continue
            }
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[[") {
                guard let keys = Self.keys(in: line.dropFirst(2), until: "]"), let last = keys.last else { continue }
                let header = Self.resolve(keys.dropLast(), arrayCounts: arrayCounts).appending(last)
                let index = arrayCounts[header, default: 0]
                arrayCounts[header] = index + 1
                section = header.appending(index: index)
                record(section, lineNumber)
            } else if line.hasPrefix("[") {
                guard let keys = Self.keys(in: line.dropFirst(), until: "]") else { continue }
                section = Self.resolve(keys, arrayCounts: arrayCounts)
                record(section, lineNumber)
            } else if let keys = Self.keys(in: line, until: "=") {
                var path = section
                for key in keys { path = path.appending(key) }
                record(path, lineNumber)
                for quote in ["\"\"\"", "'''"] where line.components(separatedBy: quote).count == 2 {
                    openQuote = Substring(quote)
                }
            }
        }
    }

    /// The line of `path`, or of its closest enclosing key or header that is written in the text.
    func line(of path: TopologyKeyPath) -> Int? {
        var candidate: TopologyKeyPath? = path
        while let current = candidate, !current.components.isEmpty {
            if let line = lines[current] { return line }
            candidate = current.parent
        }
        return nil
    }

    private mutating func record(_ path: TopologyKeyPath, _ line: Int) {
        if lines[path] == nil { lines[path] = line }
    }

    /// Inserts the current element index after every prefix that names an array of tables,
    /// so `[schedule.extra]` after a second `[[schedule]]` becomes `schedule[1].extra`.
    private static func resolve(_ keys: some Sequence<String>, arrayCounts: [TopologyKeyPath: Int]) -> TopologyKeyPath {
        var path = TopologyKeyPath.root
        for key in keys {
            path = path.appending(key)
            if let count = arrayCounts[path] { path = path.appending(index: count - 1) }
        }
        return path
    }

    /// Parses a dotted key (`a."b c".d`) at the start of `text`, which must be followed by `terminator`.
    private static func keys(in text: Substring, until terminator: Character) -> [String]? {
        var keys: [String] = []
        var rest = text
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let first = rest.first else { return nil }
            if first == "\"" || first == "'" {
                let body = rest.dropFirst()
                guard let close = body.firstIndex(of: first) else { return nil }
                keys.append(String(body[..<close]))
                rest = body[body.index(after: close)...]
            } else {
                let bare = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                guard !bare.isEmpty else { return nil }
                keys.append(String(bare))
                rest = rest.dropFirst(bare.count)
            }
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let next = rest.first else { return nil }
            if next == terminator { return keys }
            guard next == "." else { return nil }
            rest = rest.dropFirst()
        }
    }
}
