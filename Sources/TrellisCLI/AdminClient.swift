import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a node's admin interface is and how to authenticate to it: the options every command
/// that talks to a running node takes.
struct AdminOptions: ParsableArguments {
    @Option(help: "The node's admin address, host:port.")
    var node: String

    @Option(help: "The admin token (default: the TRELLIS_ADMIN_TOKEN environment variable).")
    var token: String?

    /// A client for the node, once a token is known.
    func client() throws -> AdminClient {
        guard let token = token ?? ProcessInfo.processInfo.environment["TRELLIS_ADMIN_TOKEN"], !token.isEmpty else {
            throw ValidationError("no token: pass --token or set TRELLIS_ADMIN_TOKEN (the one the node was started with)")
        }
        return AdminClient(node: node, token: token)
    }
}

/// A failure talking to a running node: printed as `Error: <message>` without the usage text
/// that `ValidationError` adds, since the command line itself was fine.
struct AdminError: Error, CustomStringConvertible {
    let description: String
}

/// Talks HTTP/JSON to one node's admin interface.
struct AdminClient {
    let node: String
    let token: String

    /// Sends one request; the HTTP status and the JSON object answered.
    func send(_ method: String, _ pathAndQuery: String, body: Data? = nil) async throws -> (status: Int, reply: [String: Any]) {
        guard let url = URL(string: "http://\(node)\(pathAndQuery)") else {
            throw ValidationError("'\(node)' is not host:port")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.httpBody = body
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw AdminError(description: "cannot reach the admin interface at \(node): \(error.localizedDescription); is the node running with --admin?")
        }
        let reply = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            ?? ["error": String(decoding: data, as: UTF8.self)]
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, reply)
    }

    /// `send`, failing with the node's reason unless it answered 200; the reply.
    func succeed(_ method: String, _ pathAndQuery: String, body: Data? = nil) async throws -> [String: Any] {
        let (status, reply) = try await send(method, pathAndQuery, body: body)
        guard status == 200 else { throw AdminError(description: "\(reply["error"] ?? "the node answered status \(status)")") }
        return reply
    }
}
