import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

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

    @Option(help: "The node's admin address, host:port.")
    var node: String

    @Option(help: "The admin token (default: the TRELLIS_ADMIN_TOKEN environment variable).")
    var token: String?

    @Flag(help: "Also push the script to every member of the node's cluster and report each node's result.")
    var cluster = false

    @Argument(help: "What to replace: overlay, placement or actor.")
    var kind: Kind

    @Argument(help: "The new script.")
    var file: String

    func run() async throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["TRELLIS_ADMIN_TOKEN"], !token.isEmpty else {
            throw ValidationError("no token: pass --token or set TRELLIS_ADMIN_TOKEN (the one the node was started with)")
        }
        let source: String
        do {
            source = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        let name = URL(fileURLWithPath: file).lastPathComponent
        let query = "file=\(name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name)" + (cluster ? "&cluster=1" : "")
        guard let url = URL(string: "http://\(node)/swap/\(kind.rawValue)?\(query)") else {
            throw ValidationError("'\(node)' is not host:port")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.httpBody = Data(source.utf8)
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ValidationError("cannot reach the admin interface at \(node): \(error.localizedDescription); is the node running with --admin?")
        }
        let reply = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
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
            print("swapped \(reply["kind"] ?? kind.rawValue) on \(reply["node"] ?? node): \(reply["before"] ?? "?") -> \(reply["after"] ?? "?")")
            return
        }
        print("refused by \(reply["node"] ?? node): \(reply["error"] ?? String(decoding: data, as: UTF8.self)); the old script keeps running")
        throw ExitCode(1)
    }
}
