import Foundation
import Logging
import Metrics
import TrellisLua
import TrellisMembership
import TrellisTransport
import TrellisWire

/// Everything a node needs to start.
public struct NodeConfiguration: Sendable {
    /// The node's name: the `name` in `name@host:port`.
    public var name: String
    /// The address to listen on.
    public var host: String
    /// The port to listen on; 0 picks any free port.
    public var port: Int
    /// Nodes only talk to nodes of the same cluster name.
    public var clusterName: String
    /// The shared secret that authenticates peers; it never crosses the wire.
    public var cookie: String
    /// Labels sent to peers in the handshake, e.g. `region = "eu"`.
    public var tags: [String: String]
    /// Capabilities this node serves, sent to peers in the handshake.
    public var capabilities: [String]
    /// The overlay script's source text.
    public var overlaySource: String
    /// The overlay script's file name, used in error messages.
    public var overlayFileName: String
    /// The table passed to the overlay as `ctx.config`.
    public var overlayConfig: Value
    /// Heartbeat, failure-detection and tick timing.
    public var membership: MembershipSettings
    /// Instruction budget and memory cap of the overlay script.
    public var scriptLimits: ScriptLimits
    /// The placement script's source text; nil places with the built-in rendezvous policy
    /// (the same table as `plugins/placement/rendezvous.lua`).
    public var placementSource: String?
    /// The placement script's file name, used in error messages.
    public var placementFileName: String
    /// How many shards the hash ring has: every node of a cluster must use the same count.
    public var shardCount: Int
    /// How long a process may sit unused before it is passivated (its state dropped).
    public var processIdleTimeout: Duration
    /// Parallel connections and monotonic delivery per application channel, e.g.
    /// `["telemetry": ChannelSettings(parallelism: 4, monotonic: true)]`. Membership always
    /// has one connection of its own.
    public var channels: [ChannelName: ChannelSettings]
    /// The largest frame accepted from a peer, in bytes.
    public var maxFrameSize: Int
    /// Caps on inbound connections, handshakes and stalled frames (see `docs/limits.md`).
    public var connectionLimits: ConnectionLimits
    /// Mutual TLS between nodes, with certificates from the cluster's CA (see `docs/tls.md`);
    /// `nil` is plain TCP. The cookie authenticates peers either way.
    public var tls: TLSSettings?
    /// How long event loops keep polling after network I/O: `.lowLatency` shortens round
    /// trips at the price of that idle CPU time (see `BusyWait`); default `.off`.
    public var busyWait: BusyWait
    /// Seeds the script's `math.random`; by default derived from the node's name, so runs repeat.
    public var randomSeed: UInt64?
    /// Where the node logs; its metadata gains `node`.
    public var logger: Logger
    /// Where the node's metrics go (see `docs/metrics.md`); `nil` uses the process-wide
    /// `MetricsSystem.factory`, a no-op unless the application bootstrapped a backend.
    public var metricsFactory: (any MetricsFactory)? = nil

    public init(
        name: String,
        host: String = "127.0.0.1",
        port: Int = 0,
        clusterName: String,
        cookie: String,
        overlaySource: String,
        overlayFileName: String,
        overlayConfig: Value = .nil,
        tags: [String: String] = [:],
        capabilities: [String] = [],
        membership: MembershipSettings = .init(),
        scriptLimits: ScriptLimits = .init(),
        placementSource: String? = nil,
        placementFileName: String = "placement.lua",
        shardCount: Int = 4096,
        processIdleTimeout: Duration = .seconds(900),
        channels: [ChannelName: ChannelSettings] = [:],
        maxFrameSize: Int = Framing.defaultMaxFrameSize,
        connectionLimits: ConnectionLimits = ConnectionLimits(),
        tls: TLSSettings? = nil,
        busyWait: BusyWait = .off,
        randomSeed: UInt64? = nil,
        logger: Logger = Logger(label: "trellis")
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.clusterName = clusterName
        self.cookie = cookie
        self.overlaySource = overlaySource
        self.overlayFileName = overlayFileName
        self.overlayConfig = overlayConfig
        self.tags = tags
        self.capabilities = capabilities
        self.membership = membership
        self.scriptLimits = scriptLimits
        self.placementSource = placementSource
        self.placementFileName = placementFileName
        self.shardCount = shardCount
        self.processIdleTimeout = processIdleTimeout
        self.channels = channels
        self.maxFrameSize = maxFrameSize
        self.connectionLimits = connectionLimits
        self.tls = tls
        self.busyWait = busyWait
        self.randomSeed = randomSeed
        self.logger = logger
    }

    /// A configuration whose overlay is read from the file at `overlayPath`.
    public init(name: String, clusterName: String, cookie: String, overlayPath: String) throws(NodeError) {
        let source: String
        do {
            source = try String(contentsOfFile: overlayPath, encoding: .utf8)
        } catch {
            throw .cannotReadScript(overlayPath, error.localizedDescription)
        }
        self.init(
            name: name, clusterName: clusterName, cookie: cookie,
            overlaySource: source, overlayFileName: URL(fileURLWithPath: overlayPath).lastPathComponent
        )
    }
}

/// Why a node could not start or do what was asked.
public enum NodeError: Error, Sendable, CustomStringConvertible {
    case cannotReadScript(String, String)
    case script(ScriptError)
    case cannotListen(String, String)

    public var description: String {
        switch self {
        case .cannotReadScript(let path, let why):
            return "cannot read script \(path): \(why); check the path (relative paths are relative to the current directory)"
        case .script(let error):
            return "script rejected: \(error)"
        case .cannotListen(let address, let why):
            return "cannot listen on \(address): \(why); pick another port or use port 0 for any free port"
        }
    }
}
