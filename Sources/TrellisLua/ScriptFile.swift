import Foundation

/// A script's source text read from a file, with the file name every report names it by.
public struct ScriptFile: Sendable {
    /// The file's text.
    public let source: String
    /// The file's last path component.
    public let fileName: String

    /// Reads the file at `path` (relative paths start at the current directory).
    public init(contentsOf path: String) throws(ScriptError) {
        fileName = URL(fileURLWithPath: path).lastPathComponent
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScriptError(
                .cannotRead, file: fileName, callback: "load", message: "cannot read \(path): \(error.localizedDescription)",
                hint: "check the path; relative paths start at the current directory"
            )
        }
    }
}
