import ArgumentParser
import Foundation

/// `trellis swap`: replaces a script on a running node through its admin interface.
struct SwapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swap",
        abstract: "Hot-swap a node's overlay, placement or actor script through its admin interface.",
        discussion: """
            The node must run with --admin HOST:PORT. The new script loads beside the old one, its
            migrate (or init) runs on a copy of the old state, and only then does it take over; if
            anything fails, the node keeps the old script and this command exits 1 with the reason.
            """
    )

    enum Kind: String, ExpressibleByArgument {
        case overlay, placement, actor
    }

    @OptionGroup var admin: AdminOptions

    @Flag(help: "Also push the script to every member of the node's cluster and report each node's result.")
    var cluster = false

    @Argument(help: "What to replace: overlay, placement or actor.")
    var kind: Kind

    @Argument(help: "The new script.")
    var file: String

    func run() async throws {
        let client = try admin.client()
        let source: String
        do {
            source = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let name = URL(fileURLWithPath: file).lastPathComponent
        let query = "file=\(name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name)" + (cluster ? "&cluster=1" : "")
        let (status, reply) = try await client.send("POST", "/swap/\(kind.rawValue)?\(query)", body: Data(source.utf8))
        if let results = reply["results"] as? [[String: Any]] {
            for result in results {
                let who = result["node"] as? String ?? "?"
                if result["ok"] as? Bool == true {
                    print("swapped \(who): \(result["before"] ?? "?") -> \(result["after"] ?? "?")")
                } else {
                    print("refused \(who): \(result["error"] ?? "?"); it keeps its old script")
                }
            }
            if status != 200 { throw ExitCode(1) }
            return
        }
        if status == 200 {
            print("swapped \(reply["kind"] ?? kind.rawValue) on \(reply["node"] ?? admin.node): \(reply["before"] ?? "?") -> \(reply["after"] ?? "?")")
            return
        }
        print("refused by \(reply["node"] ?? admin.node): \(reply["error"] ?? "no reason given"); the old script keeps running")
        throw ExitCode(1)
    }
}
