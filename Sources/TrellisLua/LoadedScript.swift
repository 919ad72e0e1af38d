/// A script kind checked against its part of the contract once a VM has loaded it: overlays
/// and placement policies. Each gets the same ways to load.
public protocol LoadedScript: AnyObject {
    /// Adopts a VM that has loaded a script, once its table passes this kind's contract.
    init(loaded vm: LuaVM, exports: ScriptExports) throws(ScriptError)
}

extension LoadedScript {
    /// Loads `source` in a fresh sandboxed VM and checks its table against the contract. With
    /// `sharing`, the VM lives in that state next to others (the simulator's nodes).
    public init(
        source: String, fileName: String, limits: ScriptLimits = .init(), seed: UInt64 = 0, sharing: SharedLuaState? = nil,
        log: @escaping (String) -> Void = { _ in }
    ) throws(ScriptError) {
        let vm = try LuaVM(fileName: fileName, limits: limits, seed: seed, sharing: sharing, log: log)
        try self.init(loaded: vm, exports: try vm.loadScript(source))
    }

    /// Loads the script in the file at `path` (relative paths start at the current directory).
    public init(
        contentsOf path: String, limits: ScriptLimits = .init(), seed: UInt64 = 0, log: @escaping (String) -> Void = { _ in }
    ) throws(ScriptError) {
        let file = try ScriptFile(contentsOf: path)
        try self.init(source: file.source, fileName: file.fileName, limits: limits, seed: seed, log: log)
    }
}
