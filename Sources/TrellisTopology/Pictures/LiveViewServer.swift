import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// The live view of `trellis up --live`: a small web server showing the members graph of the
/// running topology, read-only and without authentication, loopback by default.
///
/// - `GET /`: a page that polls `graph.json` every 500 ms, lists every node with its state,
///   and swaps in `graph.svg` whenever the graph changed (see ``LiveViewPage``).
/// - `GET /graph.json`: the latest ``MembersGraph`` as JSON.
/// - `GET /graph.svg`: the same graph drawn by ``MembersGraphSVG``.
///
/// The runner hands it each snapshot through ``show(_:elapsedMs:)``; ``stop()`` closes the
/// listener and every open connection.
public final class LiveViewServer: Sendable {
    /// The page's address, e.g. `http://127.0.0.1:8080/`.
    public let url: String
    private let channel: any Channel
    private let state: LiveViewState

    /// Starts serving on `address` (port 0: a free port; ``url`` tells which).
    ///
    /// Anyone who can reach the address can watch the cluster's names, ids and membership, so an
    /// address outside loopback is refused unless `allowPublic` is set.
    public static func start(
        at address: LiveViewAddress, title: String, allowPublic: Bool = false, group: any EventLoopGroup
    ) async throws(PictureError) -> LiveViewServer {
        guard address.isLoopback || allowPublic else { throw .notLoopback(host: address.host) }
        let state = LiveViewState(title: title)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    guard state.admit(child) else { return child.close() }
                    return child.pipeline.configureHTTPServerPipeline().flatMap {
                        child.pipeline.addHandler(LiveViewHandler(state: state))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            throw .cannotServe(address: address.description, reason: "\(error)")
        }
        let bound = LiveViewAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
        return LiveViewServer(url: "http://\(bound)/", channel: channel, state: state)
    }

    private init(url: String, channel: any Channel, state: LiveViewState) {
        self.url = url
        self.channel = channel
        self.state = state
    }

    /// Makes `nodes`, as seen `elapsedMs` into the run, what the page shows.
    public func show(_ nodes: [UpReport.NodeReport], elapsedMs: Int) {
        state.update(nodes, elapsedMs: elapsedMs)
    }

    /// Stops listening and closes every connection; the page then says the run has ended.
    public func stop() async {
        let open = state.close()
        try? await channel.close()
        for connection in open { try? await connection.close() }
    }
}

/// What the handlers of every connection share: the latest graph and the open connections.
final class LiveViewState: @unchecked Sendable {
    // Safety of @unchecked Sendable: every stored property is read and written only while
    // `lock` is held.
    private let lock = NSLock()
    let title: String
    private var nodes: [UpReport.NodeReport] = []
    private var elapsedMs: Int?
    private var connections: [ObjectIdentifier: any Channel] = [:]
    private var closed = false

    init(title: String) { self.title = title }

    /// The graph of the latest snapshot, built when asked for (snapshots come far more often
    /// than requests).
    var current: MembersGraph {
        let (nodes, elapsedMs) = lock.withLock { (self.nodes, self.elapsedMs) }
        return MembersGraph(title: title, reports: nodes, elapsedMs: elapsedMs)
    }

    func update(_ nodes: [UpReport.NodeReport], elapsedMs: Int) {
        lock.withLock { (self.nodes, self.elapsedMs) = (nodes, elapsedMs) }
    }

    /// Records a new connection, to be closed by `close()`; false once the server is stopping.
    func admit(_ channel: any Channel) -> Bool {
        let key = ObjectIdentifier(channel)
        let admitted = lock.withLock {
            guard !closed else { return false }
            connections[key] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { _ in self.lock.withLock { _ = self.connections.removeValue(forKey: key) } }
        }
        return admitted
    }

    /// Refuses new connections from now on and returns those still open.
    func close() -> [any Channel] {
        lock.withLock {
            closed = true
            return Array(connections.values)
        }
    }
}

/// One HTTP connection of the live view: answers each GET from the shared state.
private final class LiveViewHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safety of @unchecked Sendable: NIO calls a handler only on its channel's event loop, and
    // `head` is touched only in those calls.
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: LiveViewState
    private var head: HTTPRequestHead?

    init(state: LiveViewState) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            return
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, type, body) = answer(head)
            respond(context, status, type: type, body: body, keepAlive: head.isKeepAlive)
        }
    }

    private func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        guard head.method == .GET else { return (.methodNotAllowed, "text/plain", "only GET is served here\n") }
        switch head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/" {
        case "/", "/index.html":
            return (.ok, "text/html; charset=utf-8", LiveViewPage.html(title: state.title))
        case "/graph.json":
            return (.ok, "application/json", oneLineJSON(state.current) + "\n")
        case "/graph.svg":
            return (.ok, "image/svg+xml", MembersGraphSVG.render(state.current))
        default:
            return (.notFound, "text/plain", "not found: the live view serves /, /graph.json and /graph.svg\n")
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, type: String, body: String, keepAlive: Bool) {
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
