import Logging
import Metrics
import NIOCore
import TrellisWire

/// How a `Transport` listens, authenticates and connects.
public struct TransportConfig: Sendable {
    /// This node's name, the `name` of its `PeerID`.
    public var name: String
    /// The address to listen on; also the host of this node's `PeerID`.
    public var host: String
    /// The TCP port to listen on; 0 picks any free port.
    public var port: Int
    /// Only peers with the same cluster name are accepted.
    public var clusterName: String
    /// The shared secret both ends prove they know; it never crosses the wire.
    public var cookie: String
    /// What this node tells its peers about itself.
    public var metadata: PeerMetadata
    /// The largest frame accepted or sent; a peer sending more is disconnected.
    public var maxFrameSize: Int
    /// How long a new connection may take to authenticate before it is closed.
    public var handshakeTimeout: Duration
    /// Caps on inbound connections, handshake frames and stalled frames; see `ConnectionLimits`.
    public var limits: ConnectionLimits
    /// How long a TCP connect may take.
    public var connectTimeout: Duration
    /// The first reconnect delay; it doubles per failed attempt (with jitter) up to `reconnectCap`.
    public var reconnectBase: Duration
    /// The longest reconnect delay.
    public var reconnectCap: Duration
    /// Application sends wait while a connection has more than this many bytes queued.
    public var outboxHighWatermark: Int
    /// The channels `connect(to:)` keeps open; `.membership` is always included.
    public var channels: [ChannelName]
    /// Parallelism and monotonic delivery per channel; channels not listed get one ordinary
    /// connection per peer. `.membership` always has exactly one.
    public var channelSettings: [ChannelName: ChannelSettings]
    /// The channels peers may open connections for; `nil` accepts any name. A handshake naming
    /// another channel is rejected. `.membership` is always accepted.
    public var acceptedChannels: Set<ChannelName>?
    /// Mutual TLS on every connection, with certificates from the cluster's CA; `nil` is plain
    /// TCP. The cookie handshake runs either way. Every node of a cluster needs TLS, or none.
    public var tls: TLSSettings?
    /// How long event loops keep polling after network I/O, for round-trip latency; default off, see `BusyWait`.
    public var busyWait: BusyWait
    /// Where the transport logs; every line carries `node` metadata.
    public var logger: Logger
    /// Where the traffic metrics go (see `ChannelMetrics`); `nil` uses the process-wide
    /// `MetricsSystem.factory`, a no-op unless the application bootstrapped a backend.
    public var metricsFactory: (any MetricsFactory)? = nil

    public init(
        name: String,
        host: String = "127.0.0.1",
        port: Int = 0,
        clusterName: String,
        cookie: String,
        metadata: PeerMetadata = PeerMetadata(),
        maxFrameSize: Int = Framing.defaultMaxFrameSize,
        handshakeTimeout: Duration = .seconds(5),
        limits: ConnectionLimits = ConnectionLimits(),
        connectTimeout: Duration = .seconds(5),
        reconnectBase: Duration = .milliseconds(50),
        reconnectCap: Duration = .seconds(2),
        outboxHighWatermark: Int = 4 * 1024 * 1024,
        channels: [ChannelName] = [.membership, .default],
        channelSettings: [ChannelName: ChannelSettings] = [:],
        acceptedChannels: Set<ChannelName>? = nil,
        tls: TLSSettings? = nil,
        busyWait: BusyWait = .off,
        logger: Logger = Logger(label: "trellis.transport")
    ) {
        self.name = name
        self.host = host
        self.port = port
        self.clusterName = clusterName
        self.cookie = cookie
        self.metadata = metadata
        self.maxFrameSize = maxFrameSize
        self.handshakeTimeout = handshakeTimeout
        self.limits = limits
        self.connectTimeout = connectTimeout
        self.reconnectBase = reconnectBase
        self.reconnectCap = reconnectCap
        self.outboxHighWatermark = outboxHighWatermark
        self.channels = channels
        self.channelSettings = channelSettings
        self.acceptedChannels = acceptedChannels
        self.tls = tls
        self.busyWait = busyWait
        self.logger = logger
    }

    /// How `channel` is carried.
    func settings(for channel: ChannelName) -> ChannelSettings {
        // On every send: nothing to look up when no channel has settings.
        guard !channelSettings.isEmpty, channel != .membership else { return ChannelSettings() }
        // A node configures a few channels: comparing names beats hashing one on every send.
        guard channelSettings.count > 4 else {
            return channelSettings.first { $0.key == channel }?.value ?? ChannelSettings()
        }
        return channelSettings[channel] ?? ChannelSettings()
    }

    /// Whether peers may open connections for `channel`.
    func accepts(_ channel: ChannelName) -> Bool {
        channel == .membership || acceptedChannels?.contains(channel) ?? true
    }

    /// The channels to keep open, membership first, without duplicates.
    var persistentChannels: [ChannelName] {
        var seen: Set<ChannelName> = [.membership]
        return [.membership] + channels.filter { seen.insert($0).inserted }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
