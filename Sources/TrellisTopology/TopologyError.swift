/// A problem with a topology file or a node config file, located by file, line and key, together
/// with what to do about it.
///
/// Its description reads like a compiler diagnostic:
/// `quickstart.toml:12: nodes.count: expected an integer, got a string. Write a whole number, e.g. count = 5.`
public struct TopologyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The category of a problem.
    public enum Kind: Sendable, Equatable {
        /// The file could not be read.
        case unreadable
        /// The text is not valid TOML.
        case syntax
        /// A required key is missing.
        case missingKey
        /// A key the format doesn't know, usually a typo.
        case unknownKey
        /// A value of the wrong TOML type.
        case wrongType
        /// A value of the right type that is out of range or malformed.
        case invalidValue
        /// A node name that no node has.
        case unknownNode
        /// The same node name given twice.
        case duplicateName
        /// A host outside 127.0.0.0/8 and ::1.
        case notLoopback
        /// The overlay script does not exist.
        case missingOverlay
    }

    /// The category of the problem.
    public var kind: Kind
    /// The topology file's path as it was given.
    public var file: String
    /// The 1-based line of the problem, when known.
    public var line: Int?
    /// The 1-based column, known for syntax errors only.
    public var column: Int?
    /// The dotted key of the offending value (`nodes.count`, `schedule[1].node`), when there is one.
    public var key: String?
    /// What is wrong.
    public var problem: String
    /// What to do about it.
    public var fix: String

    public init(
        kind: Kind, file: String, line: Int? = nil, column: Int? = nil, key: String? = nil,
        problem: String, fix: String
    ) {
        self.kind = kind
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.problem = problem
        self.fix = fix
    }

    /// `file:line[:column]: key: problem. fix.`
    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let column { text += ":\(column)" }
        text += ": "
        if let key, !key.isEmpty { text += "\(key): " }
        text += sentence(problem) + " " + sentence(fix)
        return text
    }

    private func sentence(_ text: String) -> String {
        text.hasSuffix(".") || text.hasSuffix("?") ? text : text + "."
    }
}
