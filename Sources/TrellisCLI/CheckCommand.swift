import ArgumentParser
import Foundation
import TrellisLua

/// `trellis check FILE`: loads a script in the sandbox and validates it against the contract.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a Lua script (overlay, placement policy or actor) against the script contract."
    )

    @Argument(help: "The Lua script to check.")
    var file: String

    func run() throws {
        let source: String
        do {
            source = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        switch ScriptChecker.check(source: source, fileName: URL(fileURLWithPath: file).lastPathComponent) {
        case .success(let summary):
            print("\(file): ok: \(summary)")
        case .failure(let error):
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
