import Logging
import NIOCore
import TrellisWire

/// A strategy as `trellis node --discovery` names it, made into a strategy once the node's id,
/// cluster name and cookie are known.
///
/// | text | strategy |
/// |---|---|
/// | `static:n1@10.0.0.1:7100,n2@10.0.0.2:7100` | ``StaticDiscovery`` of those ids |
/// | `dns-srv:_trellis._tcp.trellis.default.svc.cluster.local` | SRV records; a peer per target, named by its first label, at its address and the SRV port |
/// | `dns-a:trellis.default.svc.cluster.local` | A records; a peer per address, with this node's name and port |
/// | `gossip` or `gossip:239.255.73.1:45892` | multicast beacons on that group and port (these are the defaults) |
public enum DiscoverySpec: Sendable, Equatable {
    case `static`(Set<PeerID>)
    /// SRV records of `name`, asked of `server` (nil: the first nameserver of /etc/resolv.conf).
    case dnsService(name: String, server: String?)
    /// A records of `name`, asked of `server` (nil: the first nameserver of /etc/resolv.conf).
    case dnsAddresses(name: String, server: String?)
    /// Beacons on this IPv4 multicast group and port.
    case gossip(group: String, port: Int)

    /// Parses the text forms in the table above; `dnsServer` (`ip[:port]`) goes to the DNS kinds.
    ///
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` naming `--discovery` and the forms.
    public init(parsing text: String, dnsServer: String? = nil) throws(DiscoveryError) {
        let kind = text.prefix(while: { $0 != ":" })
        let argument = text.dropFirst(kind.count + 1)
        switch (kind, argument.isEmpty) {
        case ("static", false):
            var peers: Set<PeerID> = []
            for id in argument.split(separator: ",") {
                do {
                    peers.insert(try PeerID(parsing: String(id)))
                } catch {
                    throw .invalidSetting("--discovery", "\(error)")
                }
            }
            self = .static(peers)
        case ("dns-srv", false), ("dns-a", false):
            do {
                _ = try DNSWire.encode(name: String(argument))
            } catch {
                throw .invalidSetting("--discovery", "\(error)")
            }
            let name = String(argument)
            self = kind == "dns-srv" ? .dnsService(name: name, server: dnsServer) : .dnsAddresses(name: name, server: dnsServer)
        case ("gossip", true):
            let defaults = GossipSettings()
            self = .gossip(group: defaults.group, port: defaults.port)
        case ("gossip", false):
            guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]) else {
                throw .invalidSetting("--discovery", "'\(text)' is not gossip:GROUP:PORT, e.g. gossip:239.255.73.1:45892")
            }
            let group = String(argument[..<colon])
            guard Self.isIPv4Multicast(group) else {
                throw .invalidSetting("--discovery", "'\(group)' is not an IPv4 multicast group (224.0.0.0 to 239.255.255.255); use one from 239.0.0.0/8, e.g. gossip:239.255.73.1:45892")
            }
            guard (1...65_535).contains(port) else {
                throw .invalidSetting("--discovery", "port \(port) of '\(text)' is not between 1 and 65535")
            }
            self = .gossip(group: group, port: port)
        default:
            throw .invalidSetting(
                "--discovery",
                "'\(text)' is not one of static:ID,ID,..., dns-srv:NAME, dns-a:NAME, gossip or gossip:GROUP:PORT")
        }
    }

    /// Whether `text` is a dotted IPv4 address in 224.0.0.0/4.
    private static func isIPv4Multicast(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt8($0) }
        return octets.count == 4 && (224...239).contains(octets[0])
    }

    /// The strategy for the node `selfID`.
    ///
    /// `dns-a` peers get `selfID`'s name and port: every node of the cluster must use the same
    /// ones. Gossip sends and listens on the interface of `selfID`'s host when that is an IPv4
    /// address other than `0.0.0.0` (a cluster on 127.0.0.1 stays on this host), else on the
    /// interface the kernel picks.
    ///
    /// - Throws: ``DiscoveryError`` for an invalid name, DNS server or gossip setting, or a
    ///   gossip socket that cannot be opened.
    public func strategy(
        selfID: PeerID, clusterName: String, cookie: String, group: any EventLoopGroup, logger: Logger
    ) async throws(DiscoveryError) -> any DiscoveryStrategy {
        switch self {
        case .static(let peers):
            return StaticDiscovery(peers)
        case .dnsService(let name, let server):
            return try DNSDiscovery(.service(name: name), resolver: try resolver(server, group: group), logger: logger)
        case .dnsAddresses(let name, let server):
            return try DNSDiscovery(
                .addresses(name: name, nodeName: selfID.name, port: selfID.port), resolver: try resolver(server, group: group),
                logger: logger)
        case .gossip(let address, let port):
            let host = (try? SocketAddress(ipAddress: selfID.host, port: 0))?.protocol == .inet ? selfID.host : "0.0.0.0"
            let settings = GossipSettings(group: address, port: port, interface: host)
            return try await GossipDiscovery.start(
                selfID: selfID, clusterName: clusterName, cookie: cookie, settings: settings, group: group, logger: logger)
        }
    }

    private func resolver(_ server: String?, group: any EventLoopGroup) throws(DiscoveryError) -> DNSResolver {
        do throws(DNSError) {
            let address: String
            if let server { address = server } else { address = try DNSResolver.systemServer() }
            return try DNSResolver(server: address, group: group)
        } catch {
            throw .dns(error)
        }
    }
}
