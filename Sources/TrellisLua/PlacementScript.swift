import CLuaShim
import TrellisWire

/// A member that can own shards: its id, the capabilities it serves and its tags, as it
/// announced them in the handshake.
public struct PlacementNode: Sendable, Hashable {
    /// The node's peer id.
    public var id: PeerID
    /// The capabilities it serves, e.g. `game`.
    public var capabilities: [String]
    /// Its tags, e.g. `region = "eu"`.
    public var tags: [String: String]

    public init(id: PeerID, capabilities: [String], tags: [String: String] = [:]) {
        self.id = id
        self.capabilities = capabilities
        self.tags = tags
    }

    /// The node as a placement script sees it: `{ id, capabilities, tags }`.
    var value: Value {
        .map([
            "id": .string(id.description), "capabilities": .array(capabilities.map(Value.string)),
            "tags": .map(tags.mapValues(Value.string)),
        ])
    }
}

/// A placement policy script, loaded and checked against the contract: it maps every shard of
/// a capability to the node that owns it.
///
/// The script defines `owner(shard, capability, nodes)`, called once per shard, or
/// `assign(capability, nodes, shard_count)`, called once for the whole table, or both (then
/// `assign` is used). Every call runs under the instruction budget on its own, so each shard
/// of an `owner` script has the full budget. A placement script has no state. Not `Sendable`:
/// it owns a `LuaVM`.
public final class PlacementScript: LoadedScript {
    /// The script's `name`.
    public let name: String
    /// The script's `version`.
    public let version: Int64
    /// `owner` and `assign`, those the script defines, with the line each starts on.
    public let callbacks: [String: Int]

    private let vm: LuaVM

    /// Adopts a VM that has loaded a script, once its table passes the placement contract.
    public init(loaded vm: LuaVM, exports: ScriptExports) throws(ScriptError) {
        self.vm = vm
        (name, version) = try Self.validate(exports, file: vm.fileName)
        callbacks = exports.functions.filter { $0.key == "owner" || $0.key == "assign" }
    }

    /// The script's file name.
    public var fileName: String { vm.fileName }

    /// The owner of each shard `0..<shardCount` of `capability` among `nodes`: one peer id per
    /// shard, each the id of one of `nodes`. The script sees the nodes sorted by id.
    ///
    /// Throws when the script raises, runs past a limit, or returns anything but the id of a
    /// given node for some shard. `nodes` must not be empty and `shardCount` must be positive.
    public func table(capability: String, nodes: [PlacementNode], shardCount: Int) throws(ScriptError) -> [String] {
        precondition(!nodes.isEmpty, "a placement needs at least one node")
        precondition(shardCount > 0, "the shard count must be positive")
        let sorted = nodes.sorted { $0.id < $1.id }
        let ids = Set(sorted.map(\.id.description))
        let nodesValue = Value.array(sorted.map(\.value))
        if let line = callbacks["assign"] {
            return try assign(capability, nodesValue, shardCount: shardCount, ids: ids, line: line)
        }
        // The arguments but the shard are encoded once: [shard, capability, nodes].
        let line = callbacks["owner"]
        let rest = MessagePack.encode(.string(capability)) + MessagePack.encode(nodesValue)
        return try (0..<shardCount).map { shard throws(ScriptError) in
            let arguments = [0x93] + MessagePack.encode(.int(Int64(shard))) + rest
            return try vm.invoke("owner", passingState: false, encodedArguments: arguments, results: 1, definedAt: line) { results throws(ScriptError) in
                try Self.owner(try results.value(1, named: "owner"), shard: shard, ids: ids, results: results, named: "the owner")
            }
        }
    }

    private func assign(_ capability: String, _ nodes: Value, shardCount: Int, ids: Set<String>, line: Int) throws(ScriptError) -> [String] {
        try vm.invoke(
            "assign", passingState: false, arguments: [.string(capability), nodes, .int(Int64(shardCount))],
            results: 1, definedAt: line
        ) { results throws(ScriptError) in
            let value = try results.value(1, named: "owners")
            guard let owners = value.arrayValue, owners.count == shardCount else {
                let got = value.arrayValue.map { "an array of \($0.count) owners" } ?? describe(value)
                throw results.badReturn(
                    "returned \(got) for \(shardCount) shards",
                    hint: "return an array of exactly shard_count peer ids: element i owns shard i - 1"
                )
            }
            return try owners.enumerated().map { (offset, owner) throws(ScriptError) in
                try Self.owner(owner, shard: offset, ids: ids, results: results, named: "owners[\(offset + 1)]")
            }
        }
    }

    /// `value` as the id of one of the nodes, or a report naming the shard and the value.
    private static func owner(
        _ value: Value, shard: Int, ids: Set<String>, results: LuaVM.CallResults, named name: String
    ) throws(ScriptError) -> String {
        guard case .string(let id) = value, ids.contains(id) else {
            let what = if case .string = value { "not the id of one of the \(ids.count) nodes" } else { "not a peer id string" }
            throw results.badReturn(
                "\(name) of shard \(shard) is \(describe(value)), \(what)",
                hint: "return the id of one of the nodes passed in, such as nodes[1].id"
            )
        }
        return id
    }

    private static func validate(_ exports: ScriptExports, file: String) throws(ScriptError) -> (String, Int64) {
        var problems: [String] = []
        let (name, version) = exports.identity(problems: &problems)
        for callback in ["owner", "assign"] where exports.functions[callback] == nil {
            if exports.values[callback] != nil || exports.others[callback] != nil {
                problems.append("`\(callback)` must be a function when present")
            }
        }
        if exports.functions["owner"] == nil && exports.functions["assign"] == nil {
            problems.append("`owner` or `assign` must be a function")
        }
        guard problems.isEmpty, let name, let version else {
            throw ScriptError(
                .invalidScript, file: file, callback: "load", message: problems.joined(separator: "; "),
                hint: "a placement policy returns { name, version, owner(shard, capability, nodes) and/or assign(capability, nodes, shard_count) }"
            )
        }
        return (name, version)
    }
}
