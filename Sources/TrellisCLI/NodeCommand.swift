import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Trellis
import TrellisTopology
import TrellisWire

/// `trellis node`: one node as its own OS process.
///
/// Prints one line per change, so scripts and tests can follow it:
/// `listening <id>`, `up <peer>`, `down <peer>`, `members <n> <id>...`. Ctrl-C or SIGTERM
/// leaves the cluster gracefully (the node runs as a swift-service-lifecycle service) and exits
/// with status 0. Settings come from the flags, then `TRELLIS_*` variables, then the
/// `--config` file (see `examples/node.toml`), then the defaults.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one node in this process until interrupted (Ctrl-C leaves gracefully)."
    )

    @Option(help: "A node config file (TOML, see examples/node.toml and docs/configuration.md; default: TRELLIS_CONFIG); flags and TRELLIS_* override it.")
    var config: String?

    @Option(help: "The node's name (the part before '@' in its id).")
    var name: String?

    @Option(help: "Address to listen on, host:port (port 0 = any free port; default 127.0.0.1:0).")
    var listen: String?

    @Option(name: .customLong("seed"), help: "A peer id to join through, e.g. n1@127.0.0.1:7101 (repeatable).")
    var seeds: [String] = []

    @Option(help: "The overlay script.")
    var overlay: String?

    @Option(help: "The overlay's config as a JSON object, passed to the script as ctx.config.")
    var overlayConfig: String?

    @Option(help: "The cluster's name; nodes of other clusters are refused (default: trellis).")
    var cluster: String?

    @Option(help: "The shared secret (default: the TRELLIS_COOKIE environment variable).")
    var cookie: String?

    @Option(help: "This node's TLS certificate (PEM); with --tls-key and --tls-ca, every connection uses mutual TLS (docs/tls.md).")
    var tlsCert: String?

    @Option(help: "The private key of --tls-cert (PEM, unencrypted).")
    var tlsKey: String?

    @Option(help: "The cluster's CA certificate (PEM): peers must present a certificate it signed.")
    var tlsCa: String?

    @Option(name: .customLong("tag"), help: "A tag key=value announced to peers (repeatable).")
    var tags: [String] = []

    @Option(name: .customLong("actor"), help: "A Lua actor script whose capability this node serves (repeatable).")
    var actors: [String] = []

    @Option(help: "A placement script (default: built-in rendezvous hashing).")
    var placement: String?

    @Option(help: "Serve the admin interface (status, hot swap) on host:port; needs --admin-token or TRELLIS_ADMIN_TOKEN.")
    var admin: String?

    @Option(help: "The admin interface's token (default: the TRELLIS_ADMIN_TOKEN environment variable).")
    var adminToken: String?

    @Option(help: "Heartbeat timeout, milliseconds or a duration like 2s: a silent peer is reported down after it (default 2000).")
    var failureTimeout: String?

    @Option(
        help: """
            Find peers and join them, re-polling so the cluster heals: static:ID,ID,... | dns-srv:NAME | \
            dns-a:NAME | gossip | gossip:GROUP:PORT (see docs/discovery.md).
            """)
    var discovery: String?

    @Option(help: "The DNS server for --discovery dns-*, ip[:port] (default: the first nameserver of /etc/resolv.conf).")
    var dnsServer: String?

    @Option(help: "Time between two discovery polls, milliseconds or a duration like 5s (each wait drawn within ±20%; default 5s).")
    var discoveryInterval: String?

    @Option(help: "Log level: trace, debug, info, notice, warning (default), error, critical.")
    var logLevel: String?

    @Option(help: "on or off (default): keep event loops polling for 200 µs after network I/O instead of sleeping, for shorter round trips at the cost of that idle CPU time.")
    var busyWait: String?

    func run() async throws {
        let settings = try resolveSettings(environment: ProcessInfo.processInfo.environment)
        let metrics = PrometheusExport.bootstrap()
        var configuration = try settings.configuration(logger: Logger(label: "trellis"))
        configuration.tls = try reportingSettingsErrors { try settings.tls?.settings() }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let node = try await TrellisNode.start(configuration, group: group)
        let events = await node.memberEvents()
        for actor in settings.actors { emit("serving \(try await node.serveActor(contentsOf: actor))") }
        var adminServer: AdminServer?
        if let admin = settings.admin, let token = settings.adminToken {
            adminServer = try await AdminServer.start(
                node: node, host: admin.host, port: admin.port, token: token, group: group, metrics: metrics)
            emit("admin \(adminServer?.address ?? admin.description)")
        }
        emit("listening \(node.id)")
        for seed in settings.seeds { await node.join(seed) }
        var discoveryHandle: DiscoveryHandle?
        if let discovery = settings.discovery {
            do {
                discoveryHandle = try await node.startDiscovery(discovery, settings: settings.discoverySettings, group: group)
            } catch {
                await node.stop()
                throw ValidationError("\(error)")
            }
            emit("discovery \(discovery.summary)")
        }

        let follower = Task {
            for await event in events {
                switch event {
                case .up(let peer): emit("up \(peer)")
                case .down(let peer): emit("down \(peer)")
                }
                let members = await node.members
                emit("members \(members.count) " + members.map(\.description).joined(separator: " "))
            }
        }
        try await NodeService.runUntilSignalled(node, logger: configuration.logger)
        await discoveryHandle?.stop()  // its sockets close before the event loops do
        await adminServer?.stop()
        follower.cancel()
        try await group.shutdownGracefully()
    }
}

/// Writes a line to standard output at once (the process may be read through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func makeLogger(level: String) -> Logger {
    var logger = Logger(label: "trellis")
    logger.logLevel = Logger.Level(rawValue: level) ?? .warning
    return logger
}
