import Foundation
import TrellisWire

/// A capability that some nodes of a topology serve with a Lua actor.
public struct CapabilitySpec: Sendable, Equatable {
    /// The absolute path of the actor script; the capability is the one the script names.
    public var actorPath: String
    /// The nodes that serve it; `nil` means every node, added ones included.
    public var nodes: [String]?
}

/// Calls a topology makes to processes while it runs, and what they must add up to.
public struct Workload: Sendable, Equatable {
    /// The name the report uses.
    public var name: String
    /// The capability called.
    public var capability: String
    /// How many process ids (`1` ... `ids`).
    public var ids: Int
    /// How many calls each id gets, in rounds spread evenly over `spreadMs`.
    public var calls: Int
    /// The node that makes the calls.
    public var from: String
    /// When the first round starts, in milliseconds from start.
    public var startMs: Int
    /// Over how long the rounds are spread.
    public var spreadMs: Int
    /// What each call sends.
    public var payload: Value
    /// Calls in flight at once.
    public var concurrency: Int
    /// Sent to every id once the rounds and the schedule are done...
    public var check: Value?
    /// ...and every answer must equal this.
    public var equals: Value?
}

/// Parses `placement`, `[[capabilities]]` and `[[workload]]`.
struct TopologyProcessParser {
    let root: TopologyTableReader
    let nodeNames: [String]

    func parsePlacement() throws(TopologyError) -> String? {
        guard let placement = try root.string("placement", example: "placement = \"../../plugins/placement/rendezvous.lua\"") else {
            return nil
        }
        return try root.existingScript(placement, key: "placement")
    }

    func parseCapabilities() throws(TopologyError) -> [CapabilitySpec] {
        try root.tables("capabilities", example: "[[capabilities]] actor = \"../../plugins/actors/counter.lua\"").map {
            table throws(TopologyError) in
            try table.allowOnly(["actor", "nodes"])
            let example = "actor = \"../../plugins/actors/counter.lua\""
            let actor = try table.require(table.string("actor", example: example), "actor", example: example)
            let nodes = try table.stringArray("nodes", example: "nodes = [\"n1\", \"n2\"]")
            for name in nodes ?? [] where !nodeNames.contains(name) {
                throw unknownNode(name, in: table, key: "nodes", names: nodeNames)
            }
            return CapabilitySpec(actorPath: try table.existingScript(actor, key: "actor"), nodes: nodes)
        }
    }

    func parseWorkloads() throws(TopologyError) -> [Workload] {
        try root.tables("workload", example: "[[workload]] capability = \"counter\" ids = 100 calls = 10").enumerated().map {
            index, table throws(TopologyError) in
            try table.allowOnly(["name", "capability", "ids", "calls", "from", "start", "spread", "payload", "concurrency", "check", "equals"])
            let capability = try table.require(table.string("capability", example: "capability = \"counter\""), "capability", example: "capability = \"counter\"")
            let ids = try positive(table, "ids", default: nil, example: "ids = 100")
            let calls = try positive(table, "calls", default: 1, example: "calls = 10")
            let concurrency = try positive(table, "concurrency", default: 16, example: "concurrency = 16")
            let from = try table.string("from", example: "from = \"n1\"") ?? nodeNames[0]
            guard nodeNames.contains(from) else { throw unknownNode(from, in: table, key: "from", names: nodeNames) }
            let check = try value(table, "check")
            let equals = try value(table, "equals")
            guard (check == nil) == (equals == nil) else {
                throw table.error(.missingKey, check == nil ? "check" : "equals", "`check` and `equals` go together",
                                  fix: "Give both, e.g. `check = { op = \"get\" }` and `equals = 10`, or neither")
            }
            return Workload(
                name: try table.string("name", example: "name = \"counters\"") ?? "workload \(index + 1) (\(capability))",
                capability: capability, ids: ids, calls: calls, from: from,
                startMs: try table.duration("start") ?? 0, spreadMs: try table.duration("spread") ?? 0,
                payload: try value(table, "payload") ?? .map(["op": "add"]), concurrency: concurrency, check: check, equals: equals)
        }
    }

    private func positive(_ table: TopologyTableReader, _ key: String, default fallback: Int?, example: String) throws(TopologyError) -> Int {
        guard let number = try table.int(key, example: example) ?? fallback else {
            throw table.error(.missingKey, key, "missing required key", fix: "Add `\(example)`")
        }
        guard number > 0 else { throw table.error(.invalidValue, key, "must be positive", fix: "Write e.g. `\(example)`") }
        return number
    }

    /// Any TOML value (table, array, string, number, boolean) as a `Value`.
    private func value(_ table: TopologyTableReader, _ key: String) throws(TopologyError) -> Value? {
        guard let raw = table.table[key] else { return nil }
        return try TopologyConfig.value(of: raw, at: table.path.appending(key), context: table.context)
    }
}

extension TopologyTableReader {
    /// The absolute path of the script `value` names (relative to the topology file's folder),
    /// which must exist.
    func existingScript(_ value: String, key: String) throws(TopologyError) -> String {
        guard !value.isEmpty else {
            throw error(.invalidValue, key, "must not be empty", fix: "Write the path of a .lua file")
        }
        return try existingFile(value, key: key, kind: .missingOverlay, what: "script", fix: "Point `\(key)` at an existing .lua file")
    }

    /// The absolute path of the file `value` names, relative to the folder of the file being
    /// read, which must exist; else an error of `kind` saying there is no `what` there, with
    /// `fix` and where relative paths start.
    func existingFile(
        _ value: String, key: String, kind: TopologyError.Kind, what: String, fix: String
    ) throws(TopologyError) -> String {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        let folder = URL(fileURLWithPath: context.file, relativeTo: cwd).deletingLastPathComponent()
        let resolved = URL(fileURLWithPath: value, relativeTo: folder).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue else {
            let name = URL(fileURLWithPath: context.file).lastPathComponent
            throw error(kind, key, "no \(what) at \(resolved)", fix: "\(fix); a relative path is taken from the folder of \(name)")
        }
        return resolved
    }
}
