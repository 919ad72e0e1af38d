import TrellisWire

/// A Lua actor script: serves one capability, keeping one state per process id in one VM.
///
/// A process is activated by `init(id, arg)` on its first call or cast. A callback that fails
/// forgets the process's state, so its next call activates it afresh (the caller of the failed
/// call gets the error; other processes are untouched). Not `Sendable`: it owns a `LuaVM`.
public final class ActorScript: LoadedScript {
    /// Callbacks an actor may define besides `init` and `handle_call`.
    public static let optionalCallbacks = ["handle_cast", "handoff", "resume"]

    /// The script's `name`.
    public let name: String
    /// The script's `version`.
    public let version: Int64
    /// The capability the actor serves.
    public let capability: String
    /// Every callback the script defines, with the line it starts on.
    public let callbacks: [String: Int]

    private let vm: LuaVM
    private var active: Set<ExactString> = []

    /// Adopts a VM that has loaded a script, once its table passes the actor contract.
    public init(loaded vm: LuaVM, exports: ScriptExports) throws(ScriptError) {
        self.vm = vm
        var problems: [String] = []
        let (name, version) = exports.identity(problems: &problems)
        let capability = exports.values["capability"]?.stringValue
        if capability == nil { problems.append("`capability` must be a string") }
        for callback in ["init", "handle_call"] where exports.functions[callback] == nil {
            problems.append("`\(callback)` must be a function")
        }
        guard problems.isEmpty, let name, let version, let capability else {
            throw ScriptError(
                .invalidScript, file: vm.fileName, callback: "load", message: problems.joined(separator: "; "),
                hint: "an actor returns { name, version, capability, init, handle_call [, handle_cast, handoff, resume] }"
            )
        }
        self.name = name
        self.version = version
        self.capability = capability
        self.callbacks = exports.functions
    }

    /// The file the script came from.
    public var fileName: String { vm.fileName }
    /// Bytes the VM holds, every process's state included.
    public var memoryUsed: Int { vm.memoryUsed }
    /// How many processes hold a state now.
    public var activeCount: Int { active.count }
    /// Whether process `id` holds a state now.
    public func isActive(_ id: String) -> Bool { active.contains(ExactString(id)) }
    /// The ids of the processes that hold a state now.
    public var activeIDs: [String] { active.map(\.text) }
    /// Whether the script can hand its processes' states over (defines `handoff` and `resume`).
    public var canHandOff: Bool { callbacks["handoff"] != nil && callbacks["resume"] != nil }

    /// Runs `handle_call(state, payload, from)` for process `id`, activating it first if
    /// needed; returns the reply.
    public func call(_ id: String, payload: Value, from: String) throws(ScriptError) -> Value {
        try activateIfNeeded(id)
        return try guarded(id) { () throws(ScriptError) -> Value in
            try vm.invoke(
                "handle_call", stateKey: id, arguments: [payload, .string(from)], results: 2,
                definedAt: callbacks["handle_call"]
            ) { results throws(ScriptError) in
                let reply = try results.value(1, named: "reply")
                try results.keepAsState(2, key: id)
                return reply
            }
        }
    }

    /// Runs `handle_cast(state, payload)` for process `id` (activating it first); a script
    /// without `handle_cast` ignores casts.
    public func cast(_ id: String, payload: Value) throws(ScriptError) {
        guard callbacks["handle_cast"] != nil else { return }
        try activateIfNeeded(id)
        try guarded(id) { () throws(ScriptError) in
            try vm.invoke("handle_cast", stateKey: id, arguments: [payload], results: 1, definedAt: callbacks["handle_cast"]) {
                results throws(ScriptError) in try results.keepAsState(1, key: id)
            }
        }
    }

    /// Runs `handoff(state)` for process `id` and forgets it here: the value to `resume` it
    /// with on its new owner, or nil when it was not active or the script cannot hand off.
    public func handOff(_ id: String) throws(ScriptError) -> Value? {
        guard active.contains(ExactString(id)) else { return nil }
        defer { forget(id) }
        guard canHandOff else { return nil }
        return try vm.invoke("handoff", stateKey: id, arguments: [], results: 1, definedAt: callbacks["handoff"]) {
            results throws(ScriptError) in try results.value(1, named: "handoff value")
        }
    }

    /// Runs `resume(id, value)` and keeps its result as process `id`'s state.
    public func resume(_ id: String, from value: Value) throws(ScriptError) {
        forget(id)
        let resumed = canHandOff ? "resume" : "init"
        try vm.invoke(resumed, passingState: false, arguments: [.string(id), value], results: 1, definedAt: callbacks[resumed]) {
            results throws(ScriptError) in try results.keepAsState(1, key: id)
        }
        active.insert(ExactString(id))
    }

    /// Forgets process `id`'s state (passivation); its next call activates it afresh.
    public func forget(_ id: String) {
        guard active.remove(ExactString(id)) != nil else { return }
        vm.dropState(key: id)
    }

    private func activateIfNeeded(_ id: String) throws(ScriptError) {
        guard !active.contains(ExactString(id)) else { return }
        try vm.invoke("init", passingState: false, arguments: [.string(id), .nil], results: 1, definedAt: callbacks["init"]) {
            results throws(ScriptError) in try results.keepAsState(1, key: id)
        }
        active.insert(ExactString(id))
    }

    /// Runs `body`; when it fails, forgets the process so its next call starts afresh.
    private func guarded<Result>(_ id: String, _ body: () throws(ScriptError) -> Result) throws(ScriptError) -> Result {
        do {
            return try body()
        } catch {
            forget(id)
            throw error
        }
    }
}
