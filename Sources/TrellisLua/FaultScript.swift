import TrellisWire

/// What a fault script (or a fault rule) does to one message.
public enum FaultVerdict: Sendable, Hashable, CustomStringConvertible {
    /// The message arrives as it would have.
    case deliver
    /// The message is lost.
    case drop
    /// The message arrives this many milliseconds late (later messages may overtake it).
    case delay(milliseconds: Int)
    /// The message arrives twice.
    case duplicate

    public var description: String {
        switch self {
        case .deliver: "deliver"
        case .drop: "drop"
        case .delay(let milliseconds): "delay \(milliseconds) ms"
        case .duplicate: "duplicate"
        }
    }
}

/// A fault-injection script, loaded and checked against its contract: it decides the fate of
/// each message a node receives while it is installed.
///
/// The script returns `{ name, version, decide(from, to, channel, message) }`. `decide` runs
/// under the instruction budget for every message and returns `"deliver"` (or nothing),
/// `"drop"`, `"duplicate"` or a delay in milliseconds. `message` is the decoded value; raw
/// bytes arrive as a string and heartbeats as nil. State kept in the chunk's locals lasts as
/// long as the script is installed. Not `Sendable`: it owns a `LuaVM`.
public final class FaultScript: LoadedScript {
    /// The script's `name`.
    public let name: String
    /// The script's `version`.
    public let version: Int64
    /// The longest delay a script may ask for, in milliseconds (one minute).
    public static let maxDelay = 60_000

    private let vm: LuaVM
    private let line: Int?

    /// Adopts a VM that has loaded a script, once its table passes the fault contract.
    public init(loaded vm: LuaVM, exports: ScriptExports) throws(ScriptError) {
        self.vm = vm
        var problems: [String] = []
        let (name, version) = exports.identity(problems: &problems)
        if exports.functions["decide"] == nil { problems.append("`decide` must be a function") }
        guard problems.isEmpty, let name, let version else {
            throw ScriptError(
                .invalidScript, file: vm.fileName, callback: "load", message: problems.joined(separator: "; "),
                hint: "a fault script returns { name, version, decide(from, to, channel, message) }"
            )
        }
        self.name = name
        self.version = version
        self.line = exports.functions["decide"]
    }

    /// The script's file name.
    public var fileName: String { vm.fileName }

    /// What happens to `message` sent by `from` to `to` on `channel` (nil for a heartbeat).
    ///
    /// Throws when the script raises, runs past a limit, or returns anything but a verdict.
    public func decide(from: String, to: String, channel: String, message: Value?) throws(ScriptError) -> FaultVerdict {
        let arguments: [Value] = [.string(from), .string(to), .string(channel), message ?? .nil]
        return try vm.invoke("decide", passingState: false, arguments: arguments, results: 1, definedAt: line) {
            results throws(ScriptError) in
            let verdict = try results.value(1, named: "verdict")
            switch verdict {
            case .nil, .string("deliver"): return .deliver
            case .string("drop"): return .drop
            case .string("duplicate"): return .duplicate
            case .int(let milliseconds) where (0...Int64(Self.maxDelay)).contains(milliseconds):
                return milliseconds == 0 ? .deliver : .delay(milliseconds: Int(milliseconds))
            case .float(let milliseconds) where (0...Double(Self.maxDelay)).contains(milliseconds):
                return milliseconds < 1 ? .deliver : .delay(milliseconds: Int(milliseconds))
            default:
                throw results.badReturn(
                    "returned \(describe(verdict))",
                    hint: "return \"deliver\", \"drop\", \"duplicate\" or a delay in milliseconds (0 to \(Self.maxDelay))"
                )
            }
        }
    }
}
