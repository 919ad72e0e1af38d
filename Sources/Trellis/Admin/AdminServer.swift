import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import TrellisWire

/// The admin interface of a node: HTTP/JSON, bound to 127.0.0.1 by default, every request
/// authenticated with a bearer token.
///
/// - `GET /status`: id, members, scripts in force, error counts, capabilities.
/// - `POST /swap/overlay`, `/swap/placement` and `/swap/actor`, the script's source as the body and its
///   file name in `?file=`: a hot swap; 200 with the report, or 409 with why it was refused.
///   With `&cluster=1` the node also pushes the script to every member and answers with
///   each node's result (409 when any refused).
public final class AdminServer: Sendable {
    /// The address the interface listens on.
    public let address: String
    private let channel: any Channel

    /// Starts the interface for `node` on `host:port` (port 0: any free port).
    public static func start(
        node: TrellisNode, host: String = "127.0.0.1", port: Int, token: String, group: any EventLoopGroup
    ) async throws -> AdminServer {
        precondition(!token.isEmpty, "the admin interface needs a token")
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(AdminHandler(node: node, token: token))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        return AdminServer(address: "\(host):\(bound)", channel: channel)
    }

    private init(address: String, channel: any Channel) {
        self.address = address
        self.channel = channel
    }

    /// Stops listening.
    public func stop() async {
        try? await channel.close()
    }
}

/// One HTTP connection of the admin interface: collects a request, answers it.
private final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety of @unchecked Sendable: NIO calls a handler only on its channel's event loop, and
    // `head` and `body` are touched only in those calls; the answer is written back through
    // `context.eventLoop.execute`, on that same loop.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let node: TrellisNode
    private let token: String
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private static let maxBody = 1 << 20

    init(node: TrellisNode, token: String) {
        self.node = node
        self.token = token
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body.clear()
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= Self.maxBody else {
                respond(context, .payloadTooLarge, ["error": "the body is over \(Self.maxBody) bytes"])
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            let text = body.readString(length: body.readableBytes) ?? ""
            let loop = context.eventLoop
            let bound = NIOLoopBound(context, eventLoop: loop)
            let (node, token) = (self.node, self.token)
            Task {
                let (status, json) = await Self.answer(head, body: text, node: node, token: token)
                loop.execute { self.respond(bound.value, status, json) }
            }
        }
    }

    private static func answer(_ head: HTTPRequestHead, body: String, node: TrellisNode, token: String) async -> (HTTPResponseStatus, [String: Any]) {
        guard head.headers["Authorization"].first == "Bearer \(token)" else {
            return (.unauthorized, ["error": "missing or wrong token: send `Authorization: Bearer <token>`"])
        }
        let url = URLComponents(string: head.uri)
        let file = url?.queryItems?.first { $0.name == "file" }?.value
        let cluster = url?.queryItems?.first { $0.name == "cluster" }?.value == "1"
        switch (head.method, url?.path ?? head.uri) {
        case (.GET, "/status"):
            return (.ok, await status(of: node))
        case (.POST, let path) where path.hasPrefix("/swap/"):
            let kind = String(path.dropFirst("/swap/".count))
            if cluster {
                let results = await node.rollOut(kind: kind, source: body, fileName: file ?? "\(kind).lua")
                let entries: [[String: Any]] = results.map { result in
                    switch result.outcome {
                    case .success(let report): return ["node": "\(result.node)", "ok": true, "before": report.before, "after": report.after]
                    case .failure(let refusal): return ["node": "\(result.node)", "ok": false, "error": refusal.description]
                    }
                }
                let allOK = entries.allSatisfy { $0["ok"] as? Bool == true }
                return (allOK ? .ok : .conflict, ["ok": allOK, "kind": kind, "results": entries])
            }
            switch await node.swap(kind, source: body, fileName: file ?? "\(kind).lua") {
            case .success(let report):
                return (.ok, ["ok": true, "node": "\(node.id)", "kind": kind, "before": report.before, "after": report.after,
                              "members": report.members.map(\.description)])
            case .failure(let refusal):
                return (.conflict, ["ok": false, "node": "\(node.id)", "kind": kind, "error": refusal.description])
            }
        default:
            return (.notFound, ["error": "no \(head.method) \(head.uri); try GET /status, POST /swap/overlay, /swap/placement or /swap/actor"])
        }
    }

    private static func status(of node: TrellisNode) async -> [String: Any] {
        [
            "id": "\(node.id)",
            "members": await node.members.map(\.description),
            "overlay": await node.overlayVersion,
            "placement": await node.placementPolicyName,
            "script_errors": await node.scriptErrors,
            "capabilities": await node.capabilities,
        ]
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ json: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(data.count + 1)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: data.count + 1)
        buffer.writeBytes(data)
        buffer.writeString("\n")
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
