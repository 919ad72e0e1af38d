import Foundation

/// The outcome of `trellis up`: what `--json` prints.
public struct UpReport: Codable, Sendable, Equatable {
    /// One node at the end of the run.
    public struct NodeReport: Codable, Sendable, Equatable {
        public var id: String
        public var members: [String]
        public var scriptErrors: Int
        /// `running`, `left` or `killed`.
        public var state: String

        enum CodingKeys: String, CodingKey {
            case id, members, state
            case scriptErrors = "script_errors"
        }
    }

    /// One expectation and whether it held.
    public struct Check: Codable, Sendable, Equatable {
        public var name: String
        public var ok: Bool
        public var detail: String
    }

    /// Whether every expectation held.
    public var ok: Bool
    public var elapsedMs: Int
    public var nodes: [NodeReport]
    public var checks: [Check]
    /// What scheduled actions reported along the way (hot swaps), in order.
    public var events: [String] = []

    enum CodingKeys: String, CodingKey {
        case ok, nodes, checks, events
        case elapsedMs = "elapsed_ms"
    }

    /// The report as one line of JSON.
    public func json() -> String { oneLineJSON(self) }

    /// The report as a table for people, with at most `maxRows` node rows.
    public func table(maxRows: Int = .max) -> String {
        let width = max(4, nodes.map(\.id.count).max() ?? 0)
        var lines = ["\("node".padding(toLength: width, withPad: " ", startingAt: 0))  state    errors  members"]
        for node in nodes.prefix(maxRows) {
            let names = node.members.map { $0.split(separator: "@").first.map(String.init) ?? $0 }
            lines.append(
                node.id.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                    + node.state.padding(toLength: 7, withPad: " ", startingAt: 0) + "  "
                    + String(node.scriptErrors).padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                    + "\(node.members.count): " + names.joined(separator: " ")
            )
        }
        if nodes.count > maxRows { lines.append("... and \(nodes.count - maxRows) more nodes (--json lists them all)") }
        lines.append("")
        for event in events { lines.append("      \(event)") }
        if !events.isEmpty { lines.append("") }
        for check in checks { lines.append("\(check.ok ? "ok  " : "FAIL")  \(check.name): \(check.detail)") }
        lines.append("\(ok ? "all expectations held" : "some expectations failed") in \(elapsedMs) ms")
        return lines.joined(separator: "\n")
    }
}

/// `value` as one line of JSON with sorted keys: what the reports' `--json` prints.
func oneLineJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{\"ok\": false}"
}
