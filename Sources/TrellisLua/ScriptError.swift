/// Why a script was rejected or a callback failed.
///
/// Every report names the script's file, the line (where Lua knows one) and the callback, and
/// most carry a hint saying what to change. The node logs it, counts it and keeps the
/// script's previous state and members in force.
public struct ScriptError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be read.
        case cannotRead = "cannot read"
        /// The source does not compile.
        case syntax = "syntax error"
        /// The script raised an error.
        case runtime = "runtime error"
        /// The callback ran past its instruction budget.
        case budgetExceeded = "instruction budget exceeded"
        /// The script's VM ran past its memory cap.
        case memoryExceeded = "memory cap exceeded"
        /// A callback returned something other than the contract's shape.
        case badReturn = "bad return value"
        /// The script's table does not meet the contract (missing or mistyped fields).
        case invalidScript = "invalid script"
    }

    public var kind: Kind
    /// The script's file name.
    public var file: String
    /// The line in that file, where known.
    public var line: Int?
    /// The callback that failed: `init`, `on_message`, …; `load` while the chunk runs.
    public var callback: String
    /// Lua's message, or ours, without the file and line prefix.
    public var message: String
    /// What to do about it, when we can tell.
    public var hint: String?

    public init(_ kind: Kind, file: String, line: Int? = nil, callback: String, message: String, hint: String? = nil) {
        self.kind = kind
        self.file = file
        self.line = line
        self.callback = callback
        self.message = message
        self.hint = hint
    }

    /// `file:line: callback: message (kind); hint`.
    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        let advice = hint.map { "; \($0)" } ?? ""
        return "\(location): \(callback): \(message) (\(kind.rawValue))\(advice)"
    }
}
