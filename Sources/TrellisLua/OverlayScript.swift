import TrellisWire

/// An overlay (membership strategy) script, loaded and checked against the contract.
///
/// Each call runs one callback under the budget; its `state` return value replaces the stored
/// state only when the whole return has the contract's shape, so a failed callback leaves the
/// previous state in force. Not `Sendable`: it owns a `LuaVM`.
public final class OverlayScript: LoadedScript {
    /// Callbacks every overlay must define.
    public static let requiredCallbacks = ["init", "join", "leave", "on_message", "on_tick"]
    /// Callbacks an overlay may define.
    public static let optionalCallbacks = ["on_up", "on_down", "migrate"]

    /// The script's `name`.
    public let name: String
    /// The script's `version`.
    public let version: Int64
    /// Milliseconds between `on_tick` calls, when the script sets `tick`.
    public let tickInterval: Int?
    /// Every callback the script defines, with the line it starts on.
    public let callbacks: [String: Int]

    private let vm: LuaVM

    /// Adopts a VM that has loaded a script, once its table passes the overlay contract.
    public init(loaded vm: LuaVM, exports: ScriptExports) throws(ScriptError) {
        self.vm = vm
        (name, version, tickInterval) = try Self.validate(exports, file: vm.fileName)
        callbacks = exports.functions
    }

    /// The script's file name.
    public var fileName: String { vm.fileName }
    /// Bytes the script's VM holds.
    public var memoryUsed: Int { vm.memoryUsed }

    /// The state as a value, to carry over to a replacement script.
    public func exportState() throws(ScriptError) -> Value {
        try vm.storedState(callback: "swap")
    }

    /// Takes over from a script whose state was `oldState` at version `oldVersion`: runs
    /// `migrate(old_state, old_version, ctx)`, or `init(ctx)` when the script has no `migrate`.
    /// Returns the members it gave, if any.
    public func migrate(from oldState: Value, oldVersion: Int64, context ctx: OverlayContext) throws(ScriptError) -> [String]? {
        guard let line = callbacks["migrate"] else { return try start(ctx) }
        return try vm.invoke(
            "migrate", passingState: false, arguments: [oldState, .int(oldVersion), ctx.value], results: 2, definedAt: line
        ) { results throws(ScriptError) in
            let members = try Self.members(results, at: 2)
            try results.keepAsState(1)
            return members
        }
    }

    /// Runs `init(ctx)`; returns the initial members, if the script gave any.
    public func start(_ ctx: OverlayContext) throws(ScriptError) -> [String]? {
        try vm.invoke("init", passingState: false, arguments: [ctx.value], results: 2, definedAt: callbacks["init"]) {
            results throws(ScriptError) in
            let members = try Self.members(results, at: 2)
            try results.keepAsState(1)
            return members
        }
    }

    public func join(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try call("join", [.string(peer)])
    }

    public func leave(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try call("leave", [.string(peer)])
    }

    /// `receive` for a message not encoded yet.
    public func receive(_ message: Value, from peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try receive(EncodedValue(message), from: peer, now: now)
    }

    /// Runs `on_message(state, peer, msg)`, pushing `msg` from the message's bytes as they came.
    public func receive(_ message: EncodedValue, from peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        var arguments: [UInt8] = [0x92]
        arguments += MessagePack.encode(.string(peer))
        arguments += message.bytes
        return try call("on_message", encoded: arguments)
    }

    public func tick(now: Int64) throws(ScriptError) -> OverlayOutcome {
        try call("on_tick", [.int(now)])
    }

    public func connectionUp(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try call("on_up", [.string(peer)])
    }

    public func connectionDown(_ peer: String, reason: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try call("on_down", [.string(peer), .string(reason)])
    }

    /// Calls `callback(state, arguments...)`, an optional callback the script lacks being a
    /// no-op, and checks that it returned `state, members, messages`.
    private func call(_ callback: String, _ arguments: [Value]) throws(ScriptError) -> OverlayOutcome {
        try call(callback, encoded: MessagePack.encode(.array(arguments)))
    }

    /// `call` with the arguments encoded as one MessagePack array.
    private func call(_ callback: String, encoded arguments: [UInt8]) throws(ScriptError) -> OverlayOutcome {
        guard let line = callbacks[callback] else { return .unchanged }
        return try vm.invoke(callback, passingState: true, encodedArguments: arguments, results: 3, definedAt: line) {
            results throws(ScriptError) in
            let outcome = OverlayOutcome(members: try Self.members(results, at: 2), messages: try Self.messages(results, at: 3))
            try results.keepAsState(1)
            return outcome
        }
    }

    private static func members(_ results: LuaVM.CallResults, at position: Int32) throws(ScriptError) -> [String]? {
        let hint = "return an array of peer ids such as { \"n1@127.0.0.1:7101\" }, or nil to leave the members unchanged"
        guard let elements = try array(results, at: position, named: "members", hint: hint) else { return nil }
        return try elements.enumerated().map { (offset, element) throws(ScriptError) in
            guard case .string(let id) = element else {
                throw results.badReturn("members[\(offset + 1)] is \(describe(element)), not a peer id string", hint: hint)
            }
            return id
        }
    }

    /// The messages a callback returned: encoded in C on the fast path, read as values (and
    /// reported precisely when wrong) otherwise.
    private static func messages(_ results: LuaVM.CallResults, at position: Int32) throws(ScriptError) -> [OverlayMessage] {
        if results.isNil(position) { return [] }
        if let encoded = results.encodedMessages(at: position) { return encoded }
        let hint = "return an array of { to = <peer id>, msg = <value> }, or nil to send nothing"
        guard let elements = try array(results, at: position, named: "messages", hint: hint) else { return [] }
        return try elements.enumerated().map { (offset, element) throws(ScriptError) in
            guard case .string(let to) = element["to"] ?? .nil else {
                throw results.badReturn("messages[\(offset + 1)].to is \(describe(element["to"] ?? .nil)), not a peer id string", hint: hint)
            }
            return OverlayMessage(to: to, message: element["msg"] ?? .nil)
        }
    }

    /// Return value `position` as an array, or `nil` when the script returned nil there.
    private static func array(
        _ results: LuaVM.CallResults, at position: Int32, named name: String, hint: String
    ) throws(ScriptError) -> [Value]? {
        if results.isNil(position) { return nil }
        let value = try results.value(position, named: name)
        guard let elements = value.arrayValue else {
            throw results.badReturn("\(name) (return value \(position)) is \(describe(value)), not an array", hint: hint)
        }
        return elements
    }

    private static func validate(_ exports: ScriptExports, file: String) throws(ScriptError) -> (String, Int64, Int?) {
        var problems: [String] = []
        let (name, version) = exports.identity(problems: &problems)
        var tick: Int?
        if let value = exports.values["tick"] {
            if case .int(let ms) = value, ms > 0, ms <= Int64(Int32.max) { tick = Int(ms) } else {
                problems.append("`tick` must be a positive number of milliseconds")
            }
        }
        for callback in requiredCallbacks where exports.functions[callback] == nil {
            problems.append("`\(callback)` must be a function")
        }
        for callback in optionalCallbacks where exports.functions[callback] == nil {
            if exports.values[callback] != nil || exports.others[callback] != nil {
                problems.append("`\(callback)` must be a function when present")
            }
        }
        guard problems.isEmpty, let name, let version else {
            throw ScriptError(
                .invalidScript, file: file, callback: "load", message: problems.joined(separator: "; "),
                hint: "an overlay returns { name, version, init, join, leave, on_message, on_tick [, tick, on_up, on_down, migrate] }"
            )
        }
        return (name, version, tick)
    }
}

/// A short description of a value for error messages: its kind, and its text when short.
func describe(_ value: Value) -> String {
    switch value {
    case .nil: return "nil"
    case .bool(let b): return "the boolean \(b)"
    case .int, .float: return "the number \(value)"
    case .string(let s): return s.count <= 40 ? "the string \(String(reflecting: s))" : "a string"
    case .bytes: return "a byte string"
    case .array: return "an array"
    case .map: return "a table with non-sequence keys"
    }
}
