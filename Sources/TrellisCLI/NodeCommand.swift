import ArgumentParser
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Trellis
import TrellisLua
import TrellisTransport
import TrellisWire

/// `trellis node`: one node as its own OS process.
///
/// Prints one line per change, so scripts and tests can follow it:
/// `listening <id>`, `up <peer>`, `down <peer>`, `members <n> <id>...`. Ctrl-C or SIGTERM
/// leaves the cluster gracefully.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one node in this process until interrupted (Ctrl-C leaves gracefully)."
    )

    @Option(help: "The node's name (the part before '@' in its id).")
    var name: String

    @Option(help: "Address to listen on, host:port (port 0 = any free port).")
    var listen: String = "127.0.0.1:0"

    @Option(name: .customLong("seed"), help: "A peer id to join through, e.g. n1@127.0.0.1:7101 (repeatable).")
    var seeds: [String] = []

    @Option(help: "The overlay script.")
    var overlay: String

    @Option(help: "The overlay's config as a JSON object, passed to the script as ctx.config.")
    var config: String = "{}"

    @Option(help: "The cluster's name; nodes of other clusters are refused.")
    var cluster: String = "trellis"

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

    @Option(help: "Heartbeat timeout in milliseconds: a silent peer is reported down after it.")
    var failureTimeout: Int64 = 2_000

    @Option(
        help: """
            Find peers and join them, re-polling so the cluster heals: static:ID,ID,... | dns-srv:NAME | \
            dns-a:NAME | gossip | gossip:GROUP:PORT (see docs/discovery.md).
            """)
    var discovery: String?

    @Option(help: "The DNS server for --discovery dns-*, ip[:port] (default: the first nameserver of /etc/resolv.conf).")
    var dnsServer: String?

    @Option(help: "Milliseconds between two discovery polls (each wait drawn within ±20%).")
    var discoveryInterval: Int64 = 5_000

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func run() async throws {
        guard let cookie = cookie ?? ProcessInfo.processInfo.environment["TRELLIS_COOKIE"], !cookie.isEmpty else {
            throw ValidationError("no cookie: pass --cookie or set TRELLIS_COOKIE (every node of a cluster needs the same one)")
        }
        let (host, port) = try parseAddress(listen)
        let seedIDs = try seeds.map { text in
            do { return try PeerID(parsing: text) } catch { throw ValidationError("\(error)") }
        }
        var configuration = try NodeConfiguration(name: name, clusterName: cluster, cookie: cookie, overlayPath: overlay)
        configuration.host = host
        configuration.port = port
        configuration.overlayConfig = try JSONValue.parse(config, what: "--config")
        configuration.tags = try parseTags(tags)
        configuration.membership.failureTimeout = failureTimeout
        configuration.tls = try tlsSettings()
        configuration.logger = makeLogger(level: logLevel)
        if let placement {
            let file = try ScriptFile(contentsOf: placement)
            configuration.placementSource = file.source
            configuration.placementFileName = file.fileName
        }

        var discoverySpec: DiscoverySpec?
        let discoverySettings = DiscoverySettings(interval: .milliseconds(discoveryInterval))
        if let discovery {
            do {
                discoverySpec = try DiscoverySpec(parsing: discovery, dnsServer: dnsServer)
                try discoverySettings.validate()
            } catch {
                throw ValidationError("\(error)")
            }
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let node = try await TrellisNode.start(configuration, group: group)
        let events = await node.memberEvents()
        for actor in actors { emit("serving \(try await node.serveActor(contentsOf: actor))") }
        var adminServer: AdminServer?
        if let admin {
            guard let token = adminToken ?? ProcessInfo.processInfo.environment["TRELLIS_ADMIN_TOKEN"], !token.isEmpty else {
                throw ValidationError("the admin interface needs a token: pass --admin-token or set TRELLIS_ADMIN_TOKEN")
            }
            let (adminHost, adminPort) = try parseAddress(admin)
            adminServer = try await AdminServer.start(node: node, host: adminHost, port: adminPort, token: token, group: group)
            emit("admin \(adminServer?.address ?? admin)")
        }
        emit("listening \(node.id)")
        for seed in seedIDs { await node.join(seed) }
        var discoveryHandle: DiscoveryHandle?
        if let discoverySpec {
            do {
                discoveryHandle = try await node.startDiscovery(discoverySpec, settings: discoverySettings, group: group)
            } catch {
                await node.stop()
                throw ValidationError("\(error)")
            }
            emit("discovery \(discovery ?? "")")
        }

        let stop = SignalWaiter(signals: [SIGINT, SIGTERM])
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
        await stop.wait()
        emit("leaving")
        await node.leave()
        await discoveryHandle?.stop()  // its sockets close before the event loops do
        await adminServer?.stop()
        follower.cancel()
        try await group.shutdownGracefully()
    }
}

extension NodeCommand {
    /// The TLS settings of `--tls-cert`, `--tls-key` and `--tls-ca`, which go together; `nil`
    /// (plain TCP) without them.
    func tlsSettings() throws -> TLSSettings? {
        switch (tlsCert, tlsKey, tlsCa) {
        case (nil, nil, nil):
            return nil
        case (let cert?, let key?, let ca?):
            do {
                return try TLSSettings(certificatePath: cert, privateKeyPath: key, caPath: ca)
            } catch {
                throw ValidationError("\(error)")
            }
        default:
            throw ValidationError("--tls-cert, --tls-key and --tls-ca go together: pass all three for TLS, or none for plain TCP")
        }
    }
}

/// Writes a line to standard output at once (the process may be read through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func parseAddress(_ text: String) throws -> (String, Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
    else {
        throw ValidationError("'\(text)' is not host:port, e.g. 127.0.0.1:7101")
    }
    return (String(text[..<colon]), port)
}

func parseTags(_ pairs: [String]) throws -> [String: String] {
    var tags: [String: String] = [:]
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
            throw ValidationError("tag '\(pair)' is not key=value")
        }
        tags[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
    }
    return tags
}

func makeLogger(level: String) -> Logger {
    var logger = Logger(label: "trellis")
    logger.logLevel = Logger.Level(rawValue: level) ?? .warning
    return logger
}

/// Waits for the first of some signals, which are no longer fatal while it exists.
final class SignalWaiter {
    private let stream: AsyncStream<Void>
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32]) {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        self.stream = stream
        self.sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
    }

    func wait() async {
        for await _ in stream { return }
    }
}
