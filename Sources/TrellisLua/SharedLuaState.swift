/// One Lua state that many VMs share, each with its own environment, script, state, random
/// generator, memory account and cap (`LuaVM(fileName:limits:seed:sharing:log:)`); they take
/// turns on the state's main thread.
///
/// The simulator runs thousands of nodes; a state of their own each would hold thousands of
/// copies of the same compiled script, strings and libraries, and every callback would find
/// them cold in the cache. Sharing keeps one copy: the script is compiled once per state, and
/// each VM runs it against its own environment (a copy of the sandbox's globals with its own
/// `math` and `load`). What the VMs still share is what a script only reads: the `string`,
/// `table`, `utf8`, `coroutine` and `trellis` tables and the functions in them.
///
/// Not `Sendable`, like `LuaVM`: the state and every VM on it belong to one owner and run on
/// one thread at a time. A full collection after a failed callback is left to Lua's emergency
/// collection here, as it would walk every VM's objects.
public final class SharedLuaState {
    /// The VM that opened the sandbox: it owns the libraries and the compiled scripts.
    let first: LuaVM

    /// A state whose compiled scripts and libraries may take up to `limits.memoryCap` bytes.
    public init(limits: ScriptLimits = .init()) throws(ScriptError) {
        first = try LuaVM(fileName: "(shared Lua state)", limits: limits, seed: 0)
    }
}
