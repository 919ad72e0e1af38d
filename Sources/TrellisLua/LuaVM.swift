import CLuaShim
import TrellisWire

/// One Lua 5.4 VM running one script in the sandbox, under the instruction budget and memory
/// cap of its `ScriptLimits`.
///
/// Not `Sendable`: a VM belongs to one owner (an actor, or the simulator's single thread) and
/// never leaves it. Every Lua call that can raise runs protected, in C; Swift only reads the
/// stack, so Lua's longjmp never crosses a Swift frame.
public final class LuaVM {
    /// The script's file name, used in every error report.
    public let fileName: String
    /// The limits the script runs under.
    public let limits: ScriptLimits

    let handle: OpaquePointer
    private let logSink: LogSink
    /// The state this VM shares, kept alive for as long as the VM is.
    private let sharedState: SharedLuaState?

    /// Creates a VM with the sandboxed libraries and `math.random` seeded with `seed`. Lines the
    /// script logs (`trellis.log`, `print`) go to `log`. With `sharing`, the VM lives in that
    /// Lua state next to others (see `SharedLuaState`); otherwise it has one of its own.
    public init(
        fileName: String, limits: ScriptLimits = .init(), seed: UInt64, sharing: SharedLuaState? = nil,
        log: @escaping (String) -> Void = { _ in }
    ) throws(ScriptError) {
        let sink = LogSink(log)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        let write: trellis_log_fn = { context, line, length in
            guard let context, let line else { return }
            let bytes = UnsafeRawBufferPointer(start: line, count: length)
            Unmanaged<LogSink>.fromOpaque(context).takeUnretainedValue().write(String(decoding: bytes, as: UTF8.self))
        }
        let created = if let sharing {
            trellis_vm_new_sharing(sharing.first.handle, limits.memoryCap, write, context)
        } else {
            trellis_vm_new(limits.memoryCap, write, context)
        }
        guard let created else {
            throw ScriptError(
                .memoryExceeded, file: fileName, callback: "load",
                message: "cannot create a Lua VM within \(limits.memoryCap) bytes", hint: "raise the memory cap"
            )
        }
        self.fileName = fileName
        self.limits = limits
        self.handle = created
        self.logSink = sink
        self.sharedState = sharing
        let status = trellis_vm_open_sandbox(handle, Int64(bitPattern: seed))
        if status != TRELLIS_OK { throw failure(status, callback: "load") }
    }

    deinit { trellis_vm_close(handle) }

    /// Bytes the VM holds now.
    public var memoryUsed: Int { trellis_vm_memory_used(handle) }
    /// The most bytes the VM ever held.
    public var memoryPeak: Int { trellis_vm_memory_peak(handle) }

    /// Compiles `source` (text only, never a binary chunk), runs it under the budget and keeps
    /// the table it returns as the script. Returns what that table holds.
    public func loadScript(_ source: String) throws(ScriptError) -> ScriptExports {
        var text = source
        let status = text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                trellis_vm_load_script(handle, chars.baseAddress, chars.count, "@\(fileName)", limits.instructionBudget)
            }
        }
        defer { trellis_settop(handle, 0) }
        if status != TRELLIS_OK { throw failure(status, callback: "load") }
        guard trellis_type(handle, 1) == TRELLIS_TTABLE else {
            throw ScriptError(
                .invalidScript, file: fileName, callback: "load",
                message: "the chunk returned \(typeName(at: 1)), not a table",
                hint: "end the script with `return { name = ..., version = ..., ... }`"
            )
        }
        return try exports(ofTableAt: 1)
    }

    /// Calls the script's `callback` with the stored state first (when `passingState`) and then
    /// `arguments`, under the budget, and hands its first `results` return values to `read`
    /// while they are on the Lua stack.
    public func invoke<Result>(
        _ callback: String, passingState: Bool, arguments: [Value], results: Int32, definedAt line: Int? = nil,
        _ read: (CallResults) throws(ScriptError) -> Result
    ) throws(ScriptError) -> Result {
        try invoke(
            callback, passingState: passingState, encodedArguments: MessagePack.encode(.array(arguments)), results: results,
            definedAt: line, read
        )
    }

    /// `invoke` for arguments already encoded as one MessagePack array: a callback called many
    /// times with mostly the same arguments encodes them once.
    public func invoke<Result>(
        _ callback: String, passingState: Bool, encodedArguments encoded: [UInt8], results: Int32, definedAt line: Int? = nil,
        _ read: (CallResults) throws(ScriptError) -> Result
    ) throws(ScriptError) -> Result {
        let status = encoded.withUnsafeBufferPointer { args in
            trellis_vm_invoke(handle, callback, passingState ? 1 : 0, args.baseAddress, args.count, results, limits.instructionBudget)
        }
        return try finishInvoke(status, callback, line, read)
    }

    /// Hands a finished call's results to `read`, or turns its failure into a report.
    private func finishInvoke<Result>(
        _ status: Int32, _ callback: String, _ line: Int?, _ read: (CallResults) throws(ScriptError) -> Result
    ) throws(ScriptError) -> Result {
        defer { trellis_settop(handle, 0) }
        if status != TRELLIS_OK {
            let error = failure(status, callback: callback, definedAt: line)
            _ = trellis_vm_collect(handle)
            throw error
        }
        do {
            let result = try read(CallResults(vm: self, callback: callback, line: line))
            trellis_vm_forget_snapshot(handle)
            return result
        } catch {
            // The results were refused: the state stays as it was before the call.
            _ = trellis_vm_restore_state(handle)
            throw error
        }
    }

    /// Calls the script's `callback` with the state kept under `key` first (nil when none) and
    /// then `arguments`, under the budget; like `invoke` otherwise. Many actors of one script
    /// keep their states side by side this way, each under its id.
    public func invoke<Result>(
        _ callback: String, stateKey key: String, arguments: [Value], results: Int32, definedAt line: Int? = nil,
        _ read: (CallResults) throws(ScriptError) -> Result
    ) throws(ScriptError) -> Result {
        let encoded = MessagePack.encode(.array(arguments))
        var keyText = key
        let status = keyText.withUTF8 { keyBytes in
            keyBytes.withMemoryRebound(to: CChar.self) { keyChars in
                encoded.withUnsafeBufferPointer { args in
                    trellis_vm_invoke_keyed(
                        handle, callback, keyChars.baseAddress, keyChars.count, args.baseAddress, args.count, results,
                        limits.instructionBudget
                    )
                }
            }
        }
        return try finishInvoke(status, callback, line, read)
    }

    /// The stored state as a value (hot swap hands it to the new script's `migrate`); fails when
    /// it holds something that is not a value, such as a function.
    public func storedState(callback: String) throws(ScriptError) -> Value {
        defer { trellis_settop(handle, 0) }
        guard trellis_vm_push_state(handle) != TRELLIS_TNONE else {
            throw ScriptError(.memoryExceeded, file: fileName, callback: callback, message: "no room to read the state")
        }
        var reader = LuaValueReader(handle: handle, limits: limits, root: "state")
        do {
            return try reader.read(at: 1)
        } catch {
            throw ScriptError(
                .badReturn, file: fileName, callback: callback, message: "the state cannot be carried over: \(error.message)",
                hint: "keep only values (nil, booleans, numbers, strings, tables of them) in an overlay's state to swap it")
        }
    }

    /// Forgets the state kept under `key`.
    public func dropState(key: String) {
        var keyText = key
        _ = keyText.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { trellis_vm_drop_keyed(handle, $0.baseAddress, $0.count) }
        }
        trellis_settop(handle, 0)
    }

    /// The return values of one callback; valid only while `invoke`'s closure runs.
    public struct CallResults {
        let vm: LuaVM
        /// The callback that returned them.
        public let callback: String
        let line: Int?

        /// Whether return value `position` (1-based) is nil.
        public func isNil(_ position: Int32) -> Bool { trellis_type(vm.handle, position) <= TRELLIS_TNIL }

        /// Return value `position` as a value; `name` names it in errors (e.g. `members`).
        public func value(_ position: Int32, named name: String) throws(ScriptError) -> Value {
            var reader = LuaValueReader(handle: vm.handle, limits: vm.limits, root: name)
            do {
                return try reader.read(at: position)
            } catch {
                throw badReturn(error.message, hint: error.hint)
            }
        }

        /// Keeps return value `position` as the script's state, whatever Lua value it is.
        public func keepAsState(_ position: Int32) throws(ScriptError) {
            let status = trellis_vm_store_state(vm.handle, position)
            if status != TRELLIS_OK { throw vm.failure(status, callback: callback) }
        }

        /// Keeps return value `position` as the state under `key`, whatever Lua value it is.
        public func keepAsState(_ position: Int32, key: String) throws(ScriptError) {
            var keyText = key
            let status = keyText.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    trellis_vm_store_keyed(vm.handle, $0.baseAddress, $0.count, position)
                }
            }
            if status != TRELLIS_OK { throw vm.failure(status, callback: callback) }
        }

        /// A report that this callback returned the wrong shape.
        public func badReturn(_ message: String, hint: String? = nil) -> ScriptError {
            ScriptError(.badReturn, file: vm.fileName, line: line, callback: callback, message: message, hint: hint)
        }
    }

    private func exports(ofTableAt index: Int32) throws(ScriptError) -> ScriptExports {
        var exports = ScriptExports()
        guard trellis_push_nil(handle) > 0 else { throw failure(Int32(TRELLIS_ERRMEM), callback: "load") }
        while true {
            let more = trellis_next(handle, index)
            if more == 0 { break }
            if more < 0 { throw failure(Int32(TRELLIS_ERRMEM), callback: "load") }
            let valueIndex = trellis_top(handle)
            defer { trellis_settop(handle, valueIndex - 1) }
            guard case .string(let key) = LuaValueReader.string(handle, at: valueIndex - 1) else { continue }
            if trellis_type(handle, valueIndex) == TRELLIS_TFUNCTION {
                exports.functions[key] = Int(trellis_function_line(handle, valueIndex))
                continue
            }
            var reader = LuaValueReader(handle: handle, limits: limits, root: key)
            if let value = try? reader.read(at: valueIndex) {
                exports.values[key] = value
            } else {
                exports.others[key] = typeName(at: valueIndex)
            }
        }
        return exports
    }

    func typeName(at index: Int32) -> String {
        String(cString: trellis_type_name(handle, trellis_type(handle, index)))
    }

    /// The error for a failed protected call whose message is at stack index 1; `definedAt`
    /// is the callback's first line, the last resort for the error's line.
    func failure(_ status: Int32, callback: String, definedAt: Int? = nil) -> ScriptError {
        let raw = LuaValueReader.string(handle, at: 1).stringValue ?? "unknown error"
        let (line, message) = splitLocation(raw)
        let errorLine = line ?? nonZero(trellis_vm_error_line(handle)) ?? definedAt
        let memoryRefused = trellis_vm_memory_refused(handle) != 0
        if trellis_vm_budget_exhausted(handle) != 0 && !memoryRefused {
            return ScriptError(
                .budgetExceeded, file: fileName, line: errorLine, callback: callback,
                message: "ran past its instruction budget of \(limits.instructionBudget) instructions",
                hint: "do less per call (spread the work over on_tick) or raise the instruction budget"
            )
        }
        switch Int(status) {
        case _ where memoryRefused, TRELLIS_ERRMEM:
            return ScriptError(
                .memoryExceeded, file: fileName, line: errorLine, callback: callback,
                message: "ran past its memory cap of \(limits.memoryCap) bytes",
                hint: "keep less in the state or raise the memory cap"
            )
        case TRELLIS_ERRSYNTAX:
            return ScriptError(.syntax, file: fileName, line: errorLine, callback: callback, message: message)
        default:
            return ScriptError(.runtime, file: fileName, line: errorLine, callback: callback, message: message, hint: sandboxHint(message))
        }
    }

    /// Splits `file.lua:12: message` into 12 and `message`, for messages about this script.
    private func splitLocation(_ raw: String) -> (Int?, String) {
        let prefix = fileName + ":"
        guard raw.hasPrefix(prefix) else { return (nil, raw) }
        let rest = raw.dropFirst(prefix.count)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard let line = Int(digits), rest.dropFirst(digits.count).hasPrefix(": ") else { return (nil, raw) }
        return (line, String(rest.dropFirst(digits.count + 2)))
    }

    private func nonZero(_ line: Int32) -> Int? { line > 0 ? Int(line) : nil }

    private func sandboxHint(_ message: String) -> String? {
        let unavailable = ["io", "os", "package", "require", "debug", "dofile", "loadfile", "collectgarbage"]
        guard unavailable.contains(where: { message.contains("global '\($0)'") }) else { return nil }
        return "io, os, package, require, debug, dofile, loadfile and collectgarbage are not available in the sandbox"
    }
}

/// What a script's table holds, read once when the script loads.
public struct ScriptExports: Sendable, Equatable {
    /// Fields holding functions, with the line each is defined on.
    public var functions: [String: Int] = [:]
    /// Fields holding values (strings, numbers, tables of them).
    public var values: [String: Value] = [:]
    /// Fields holding anything else, with its Lua type.
    public var others: [String: String] = [:]

    /// The script's `name` and `version`, each nil (and a line added to `problems`) when it
    /// is missing or of the wrong type.
    public func identity(problems: inout [String]) -> (name: String?, version: Int64?) {
        let name = values["name"]?.stringValue
        if name == nil { problems.append("`name` must be a string") }
        guard case .int(let version)? = values["version"] else {
            problems.append("`version` must be an integer")
            return (name, nil)
        }
        return (name, version)
    }
}

/// Receives a script's log lines. A class so that C can hold a pointer to it.
private final class LogSink {
    let write: (String) -> Void
    init(_ write: @escaping (String) -> Void) { self.write = write }
}
