import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import TrellisWire

/// The admin interface of a node: HTTP/JSON, bound to 127.0.0.1 by default, every request
/// authenticated with a bearer token.
///
/// - `GET /status`: id, members, scripts in force, error counts, capabilities.
/// - `POST /swap/overlay`, `/swap/placement` and `/swap/actor`, the script's source as the body and its
///   file name in `?file=`: a hot swap; 200 with the report, or 409 with why it was refused.
///   With `&cluster=1` the node also pushes the script to every member and answers with
///   each node's result (409 when any refused).
/// - `GET /faults`, `POST /faults` (a fault plan as JSON), `DELETE /faults`, each with
///   `?cluster=1` for every member; `POST /partition` (`{"peers": [...]}`) and
///   `DELETE /partition`. See `AdminRoutes`.
/// - `GET /metrics`: the metrics in Prometheus' text format, when started with a registry.
public final class AdminServer: Sendable {
    /// The address the interface listens on.
    public let address: String
    private let channel: any Channel

    /// Starts the interface for `node` on `host:port` (port 0: any free port). `GET /metrics`
    /// answers with what `metrics` holds (the registry behind the `PrometheusMetricsFactory`
    /// the node's metrics go to), or 404 without one.
    public static func start(
        node: TrellisNode, host: String = "127.0.0.1", port: Int, token: String, group: any EventLoopGroup,
        metrics: PrometheusCollectorRegistry? = nil
    ) async throws -> AdminServer {
        precondition(!token.isEmpty, "the admin interface needs a token")
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(AdminHandler(node: node, token: token, metrics: metrics))
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
    private let metrics: PrometheusCollectorRegistry?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private static let maxBody = 1 << 20

    init(node: TrellisNode, token: String, metrics: PrometheusCollectorRegistry?) {
        self.node = node
        self.token = token
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
            body.clear()
        case .body(var chunk):
            guard body.readableBytes + chunk.readableBytes <= Self.maxBody else {
                respond(context, .payloadTooLarge, AdminRoutes.encode(["error": "the body is over \(Self.maxBody) bytes"]))
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            self.head = nil
            if let (status, type, data) = AdminRoutes.metrics(head, token: token, registry: metrics) {
                respond(context, status, body: data, contentType: type)
                return
            }
            let text = body.readString(length: body.readableBytes) ?? ""
            let loop = context.eventLoop
            let bound = NIOLoopBound(context, eventLoop: loop)
            let (node, token) = (self.node, self.token)
            Task {
                let (status, json) = await AdminRoutes.answer(head, body: text, node: node, token: token)
                let data = AdminRoutes.encode(json)
                loop.execute { self.respond(bound.value, status, data) }
            }
        }
    }

    /// Answers with one JSON object and a newline.
    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ json: Data) {
        respond(context, status, body: json + Data("\n".utf8), contentType: "application/json")
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, body: Data, contentType: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
