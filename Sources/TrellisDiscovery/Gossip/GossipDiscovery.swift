import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TrellisWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where and how often gossip discovery sends its beacons.
public struct GossipSettings: Sendable, Equatable {
    /// The IPv4 multicast group, e.g. `239.255.73.1` (239.0.0.0/8 is for local use).
    public var group: String
    /// The UDP port every node of the cluster uses.
    public var port: Int
    /// The IPv4 address of the interface to send and listen on: `0.0.0.0` lets the kernel pick
    /// by route; `127.0.0.1` keeps every beacon on this host.
    public var interface: String
    /// How many routers a beacon may cross (IP_MULTICAST_TTL): 1 stays on the local network, 0
    /// on this host.
    public var hops: UInt8
    /// Time between two beacons.
    public var interval: Duration
    /// A peer is found for this long after its latest beacon.
    public var expiry: Duration
    /// A beacon is accepted only if its timestamp is within this of the receiver's clock (so
    /// clocks must agree to within it), and newer than the sender's previous one.
    public var window: Duration

    public init(
        group: String = "239.255.73.1", port: Int = 45_892, interface: String = "0.0.0.0", hops: UInt8 = 1,
        interval: Duration = .seconds(1), expiry: Duration = .seconds(5), window: Duration = .seconds(30)
    ) {
        self.group = group
        self.port = port
        self.interface = interface
        self.hops = hops
        self.interval = interval
        self.expiry = expiry
        self.window = window
    }

    /// Checks every setting.
    ///
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` naming the first one out of range.
    public func validate() throws(DiscoveryError) {
        guard (1...65535).contains(port) else { throw .invalidSetting("port", "\(port) is not from 1 to 65535") }
        guard let group = try? SocketAddress(ipAddress: self.group, port: port), group.protocol == .inet, group.isMulticast
        else { throw .invalidSetting("group", "'\(self.group)' is not an IPv4 multicast address, e.g. 239.255.73.1") }
        guard (try? SocketAddress(ipAddress: interface, port: 0))?.protocol == .inet else {
            throw .invalidSetting("interface", "'\(interface)' is not an IPv4 address, e.g. 0.0.0.0 or 127.0.0.1")
        }
        guard interval > .zero else { throw .invalidSetting("interval", "must be positive, e.g. 1 s") }
        guard expiry > interval else { throw .invalidSetting("expiry", "must be longer than the interval (\(interval))") }
        guard window > .zero, window <= .seconds(86_400) else { throw .invalidSetting("window", "must be from 1 ms to a day") }
    }
}

/// Finds peers by UDP multicast: every node sends a signed beacon to a group on an interval
/// and lists the peers whose beacons it heard lately.
///
/// Beacons carry the cluster name, the sender's peer id and a timestamp, signed with
/// HMAC-SHA256 under a key derived from the cookie. A receiver ignores other clusters,
/// strangers (bad signature), beacons outside its timestamp window, and replays (a beacon no
/// newer than that peer's latest); ``stats`` counts each. A node that stops beaconing is no
/// longer found after ``GossipSettings/expiry``. IPv4 only.
public final class GossipDiscovery: DiscoveryStrategy {
    /// This node's id, which its beacons announce.
    public let selfID: PeerID
    /// The settings in force.
    public let settings: GossipSettings
    private let channel: any Channel
    private let table: NIOLockedValueBox<GossipTable>
    private let heartbeat: RepeatedTask

    public var name: String { "gossip \(settings.group):\(settings.port) via \(settings.interface)" }

    /// How many datagrams got each verdict so far.
    public var stats: GossipStats { table.withLockedValue { $0.stats } }

    private init(
        selfID: PeerID, settings: GossipSettings, channel: any Channel, table: NIOLockedValueBox<GossipTable>,
        heartbeat: RepeatedTask
    ) {
        self.selfID = selfID
        self.settings = settings
        self.channel = channel
        self.table = table
        self.heartbeat = heartbeat
    }

    /// Joins the group and starts beaconing at once.
    ///
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` for a bad setting or a cluster name or
    ///   id over 255 bytes; ``DiscoveryError/gossipSocket(_:_:)`` when the socket cannot be
    ///   bound or joined to the group.
    public static func start(
        selfID: PeerID, clusterName: String, cookie: String, settings: GossipSettings = GossipSettings(),
        group: any EventLoopGroup, logger: Logger = Logger(label: "trellis.discovery")
    ) async throws(DiscoveryError) -> GossipDiscovery {
        try settings.validate()
        guard clusterName.utf8.count <= 255, selfID.description.utf8.count <= 255 else {
            throw .invalidSetting("clusterName", "the cluster name and the peer id must each fit in 255 bytes")
        }
        let address = "\(settings.group):\(settings.port)"
        guard let target = try? SocketAddress(ipAddress: settings.group, port: settings.port),
            case .v4(let group4) = target, case .v4(let interface4)? = try? SocketAddress(ipAddress: settings.interface, port: 0)
        else { throw .invalidSetting("group", "\(address) is not an IPv4 multicast address") }
        let key = GossipBeacon.key(cookie: cookie, clusterName: clusterName)
        let table = NIOLockedValueBox(GossipTable(
            selfID: selfID, clusterName: clusterName, key: key,
            window: UInt64(settings.window / .milliseconds(1)), expiry: UInt64(settings.expiry / .milliseconds(1))))
        let loop = group.next()
        let channel: any Channel
        do {
            channel = try await DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(GossipReceiver(table: table))
                    }
                }
                .bind(to: target).get()
        } catch {
            throw .gossipSocket(address, "cannot bind: \(error)")
        }
        do {
            guard let options = channel as? any SocketOptionProvider else { throw DiscoveryError.failed("no socket options") }
            let interface = interface4.address.sin_addr
            try await options.setIPMulticastIF(interface).get()
            try await options.setIPMulticastLoop(1).get()
            try await options.setIPMulticastTTL(settings.hops).get()
            let membership = ip_mreq(imr_multiaddr: group4.address.sin_addr, imr_interface: interface)
            try await options.unsafeSetSocketOption(level: .ip, name: .ip_add_membership, value: membership).get()
        } catch {
            try? await channel.close()
            throw .gossipSocket(address, "cannot join the group on interface \(settings.interface): \(error)")
        }
        let heartbeat = loop.scheduleRepeatedTask(initialDelay: .zero, delay: TimeAmount(settings.interval)) { _ in
            let beacon = GossipBeacon(clusterName: clusterName, peer: selfID, timestamp: wallClockMilliseconds())
            let envelope = AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: beacon.encoded(key: key)))
            channel.writeAndFlush(envelope).whenFailure { error in
                logger.warning("gossip beacon not sent: \(error)", metadata: ["group": "\(address)"])
            }
        }
        return GossipDiscovery(selfID: selfID, settings: settings, channel: channel, table: table, heartbeat: heartbeat)
    }

    /// The peers whose beacons were heard within ``GossipSettings/expiry``.
    public func discover() -> Set<PeerID> {
        let now = wallClockMilliseconds()
        return table.withLockedValue { $0.alive(now: now) }
    }

    /// Stops beaconing and leaves the group.
    public func shutdown() async {
        heartbeat.cancel()
        try? await channel.close()
    }
}

/// Milliseconds since 1970 by the wall clock, which beacons carry.
func wallClockMilliseconds() -> UInt64 {
    UInt64(max(0, Date().timeIntervalSince1970 * 1000))
}

/// Passes each datagram to the table.
private final class GossipReceiver: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let table: NIOLockedValueBox<GossipTable>

    init(table: NIOLockedValueBox<GossipTable>) { self.table = table }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        let bytes = datagram.readableBytes <= GossipBeacon.maxSize ? Array(datagram.readableBytesView) : []
        let now = wallClockMilliseconds()
        _ = table.withLockedValue { $0.receive(bytes, now: now) }
    }
}
