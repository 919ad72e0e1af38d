import TrellisWire

/// A way to find the peers of a cluster: a static list, DNS records, multicast beacons, or
/// anything that can name peer ids.
///
/// A strategy only *finds* peers. A ``DiscoveryDriver`` polls it on an interval and feeds the
/// peers it finds, but the node does not consider members, to the overlay's `join`; the overlay
/// decides what membership follows. A strategy's answer may include the node itself (the
/// driver skips it) and may differ from one call to the next.
///
/// The smallest strategy is ``StaticDiscovery``:
///
/// ```swift
/// public struct StaticDiscovery: DiscoveryStrategy {
///     public let peers: Set<PeerID>
///     public var name: String { "static" }
///     public func discover() -> Set<PeerID> { peers }
/// }
/// ```
public protocol DiscoveryStrategy: Sendable {
    /// A short name for log lines, e.g. `dns _trellis._tcp.trellis.default.svc.cluster.local`.
    var name: String { get }

    /// The peers this strategy sees now. Called once per poll, never concurrently with itself.
    ///
    /// - Throws: a ``DiscoveryError`` when the peers cannot be found this time (a server is
    ///   down, a socket failed); the driver logs it, joins nobody and polls again later.
    func discover() async throws(DiscoveryError) -> Set<PeerID>

    /// Releases what the strategy holds (sockets, timers). The driver calls it once, when it
    /// stops; the default does nothing.
    func shutdown() async
}

extension DiscoveryStrategy {
    public func shutdown() async {}
}

/// Why a strategy found no peers this time, or could not start.
public enum DiscoveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The DNS lookup failed.
    case dns(DNSError)
    /// The gossip socket could not be opened or configured: the address and what went wrong.
    case gossipSocket(String, String)
    /// A setting is out of range: which one, and why.
    case invalidSetting(String, String)
    /// A custom strategy failed; the text says why and what to do.
    case failed(String)

    public var description: String {
        switch self {
        case .dns(let error):
            return "DNS discovery failed: \(error)"
        case .gossipSocket(let address, let why):
            return "gossip discovery cannot use \(address): \(why); check the group, port and interface "
                + "(the interface must be an IPv4 address of this host, e.g. 127.0.0.1 or the pod IP)"
        case .invalidSetting(let setting, let why):
            return "invalid discovery setting \(setting): \(why)"
        case .failed(let why):
            return "discovery failed: \(why)"
        }
    }
}

/// A fixed list of peers: the simplest strategy, and the one to copy when writing your own.
///
/// Re-polling still matters with a fixed list: a peer that is listed but not a member (it
/// restarted, or a partition dropped it) is joined again on a later poll.
public struct StaticDiscovery: DiscoveryStrategy {
    /// The peers to join.
    public let peers: Set<PeerID>

    public var name: String { "static (\(peers.count) peers)" }

    /// A strategy that always finds `peers`.
    public init(_ peers: some Sequence<PeerID>) {
        self.peers = Set(peers)
    }

    /// A strategy that always finds the peers of `texts`, each `name@host:port`.
    ///
    /// - Throws: the first id that does not parse.
    public init(parsing texts: [String]) throws(PeerIDError) {
        var peers: Set<PeerID> = []
        for text in texts { peers.insert(try PeerID(parsing: text)) }
        self.peers = peers
    }

    public func discover() -> Set<PeerID> { peers }
}
