import Logging
import TrellisWire

/// Finds peers in DNS: the A/AAAA records of a name (a Kubernetes headless Service), or its
/// SRV records. Each poll asks again, so a change of records is seen on the next poll.
///
/// Peer ids are made so they equal the ids the peers give themselves (`name@host:port`, with
/// the host and port they listen on), by one of two rules:
///
/// - ``Records/addresses(name:nodeName:port:)``: each address `A` becomes
///   `nodeName@A:port`. Every node must be started with the same name (`nodeName`), port
///   (`port`), and its own address as listen host, written as DNS gives it (IPv6 as RFC 5952
///   does: `fd00::1`).
/// - ``Records/service(name:nodeName:host:)``: each SRV target `T` with port `P` becomes
///   `N@H:P`, where `N` is the first label of `T` (`trellis-0` for
///   `trellis-0.trellis.default.svc.cluster.local`, a StatefulSet pod's hostname) or a fixed
///   name, and `H` is an address of `T` (from the reply's additional records, else asked
///   for) or `T` itself. Nodes are started with `--name` their hostname and `--listen` their
///   address and port.
///
/// A name that does not exist (NXDOMAIN) or has no records yet finds no peers; it is not an error.
public struct DNSDiscovery: DiscoveryStrategy {
    /// Which records to read and how to make peer ids of them.
    public enum Records: Sendable, Equatable {
        /// A and/or AAAA records of `name`; each address is a peer `nodeName@address:port`.
        case addresses(name: String, nodeName: String, port: Int)
        /// SRV records of `name` (e.g. `_trellis._tcp.trellis.default.svc.cluster.local`);
        /// each target is a peer named by `nodeName`, at the host `host` says, on the SRV port.
        case service(name: String, nodeName: ServiceNodeName = .firstLabel, host: ServiceHost = .address)
    }

    /// The name part of a peer id made from an SRV target.
    public enum ServiceNodeName: Sendable, Equatable {
        /// The target's first label: `trellis-0` for `trellis-0.trellis.default.svc.cluster.local`.
        case firstLabel
        /// The same name for every target.
        case fixed(String)
    }

    /// The host part of a peer id made from an SRV target.
    public enum ServiceHost: Sendable, Equatable {
        /// The target's address, as the node listens on it.
        case address
        /// The target's name itself, for nodes that listen on their DNS name.
        case targetName
    }

    /// Which addresses count.
    public enum AddressFamily: Sendable, Equatable {
        case ipv4, ipv6, any

        var types: [DNSRecordType] {
            switch self {
            case .ipv4: return [.a]
            case .ipv6: return [.aaaa]
            case .any: return [.a, .aaaa]
            }
        }

        func admits(_ address: String) -> Bool {
            switch self {
            case .ipv4: return !address.contains(":")
            case .ipv6: return address.contains(":")
            case .any: return true
            }
        }
    }

    /// The records read.
    public let records: Records
    /// The addresses used.
    public let family: AddressFamily
    /// The resolver asked.
    public let resolver: DNSResolver
    private let logger: Logger

    public var name: String {
        switch records {
        case .addresses(let name, _, _): return "dns \(name) (\(family == .ipv6 ? "AAAA" : family == .any ? "A+AAAA" : "A"))"
        case .service(let name, _, _): return "dns \(name) (SRV)"
        }
    }

    /// A strategy reading `records` through `resolver`.
    ///
    /// - Throws: ``DiscoveryError/dns(_:)`` for an invalid name, and
    ///   ``DiscoveryError/invalidSetting(_:_:)`` for an invalid node name or port.
    public init(
        _ records: Records, family: AddressFamily = .ipv4, resolver: DNSResolver,
        logger: Logger = Logger(label: "trellis.discovery")
    ) throws(DiscoveryError) {
        let name: String
        switch records {
        case .addresses(let queried, let nodeName, let port):
            name = queried
            try Self.check(nodeName: nodeName)
            guard (1...65535).contains(port) else { throw .invalidSetting("port", "\(port) is not from 1 to 65535") }
        case .service(let queried, let nodeName, _):
            name = queried
            if case .fixed(let fixed) = nodeName { try Self.check(nodeName: fixed) }
        }
        do {
            _ = try DNSWire.encode(name: name)
        } catch {
            throw .dns(error)
        }
        self.records = records
        self.family = family
        self.resolver = resolver
        self.logger = logger
    }

    public func discover() async throws(DiscoveryError) -> Set<PeerID> {
        do {
            switch records {
            case .addresses(let name, let nodeName, let port):
                return peers(try await addresses(of: name, from: nil), nodeName: nodeName, port: port)
            case .service(let name, let nodeName, let host):
                return try await service(name, nodeName: nodeName, host: host)
            }
        } catch {
            throw .dns(error)
        }
    }

    private func service(_ name: String, nodeName: ServiceNodeName, host: ServiceHost) async throws(DNSError) -> Set<PeerID> {
        let response = try await resolver.query(name, .srv)
        var found: Set<PeerID> = []
        for record in response.answers {
            guard case .srv(_, _, let port, let target) = record.data, !target.isEmpty, port != 0 else { continue }
            let peerName: String
            switch nodeName {
            case .firstLabel: peerName = String(target.prefix(while: { $0 != "." }))
            case .fixed(let fixed): peerName = fixed
            }
            switch host {
            case .targetName:
                found.formUnion(peers([target], nodeName: peerName, port: Int(port)))
            case .address:
                let addresses = try await addresses(of: target, from: response)
                found.formUnion(peers(addresses, nodeName: peerName, port: Int(port)))
            }
        }
        return found
    }

    /// The addresses of `name` of the wanted family: from `reply`'s records when it has them,
    /// else asked for.
    private func addresses(of name: String, from reply: DNSResponse?) async throws(DNSError) -> [String] {
        let known = reply?.addresses(of: name).filter(family.admits) ?? []
        if !known.isEmpty { return known }
        var addresses: [String] = []
        for type in family.types {
            addresses += try await resolver.query(name, type).addresses(of: name).filter(family.admits)
        }
        return addresses
    }

    private func peers(_ hosts: [String], nodeName: String, port: Int) -> Set<PeerID> {
        var peers: Set<PeerID> = []
        for host in hosts {
            do {
                peers.insert(try PeerID(parsing: "\(nodeName)@\(host):\(port)"))
            } catch {
                logger.warning("DNS record skipped: \(error)", metadata: ["strategy": "\(name)"])
            }
        }
        return peers
    }

    private static func check(nodeName: String) throws(DiscoveryError) {
        guard (try? PeerID(parsing: "\(nodeName)@127.0.0.1:1"))?.name == nodeName else {
            throw .invalidSetting("nodeName", "'\(nodeName)' is not a node name: use letters, digits, '_', '-' and '.'")
        }
    }
}
