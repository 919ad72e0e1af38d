import NIOCore
import TrellisDiscovery
import TrellisTransport

/// The three files of mutual TLS between nodes (`tls_cert`, `tls_key`, `tls_ca`; docs/tls.md),
/// which go together.
public struct NodeTLSFiles: Sendable, Equatable {
    /// This node's certificate (PEM).
    public var certificate: String
    /// Its private key (PEM, unencrypted).
    public var privateKey: String
    /// The cluster's CA certificate(s) (PEM).
    public var ca: String
    /// Where the three were set, for errors: config file paths, `the environment`, `the command line`.
    public var origins: [String]

    /// The files, read and checked against each other.
    ///
    /// - Throws: ``NodeSettingsError`` with the reason `TLSSettings` gives (a missing file, a key
    ///   that is not the certificate's, a certificate the CA did not sign...) and where the
    ///   files were set.
    public func settings() throws(NodeSettingsError) -> TLSSettings {
        do {
            return try TLSSettings(certificatePath: certificate, privateKeyPath: privateKey, caPath: ca)
        } catch {
            throw NodeSettingsError(
                source: "tls", problem: "\(error)", fix: "The TLS files came from \(origins.joined(separator: " and "))")
        }
    }

    private static var keys: [(key: NodeSettingKey, field: KeyPath<NodeSettingsLayer, String?>)] {
        [(.tlsCert, \.tlsCert), (.tlsKey, \.tlsKey), (.tlsCa, \.tlsCa)]
    }

    /// The files the first layer that sets each names; `nil` when no layer sets any.
    ///
    /// - Throws: ``NodeSettingsError`` when some of the three are set and others not, naming
    ///   the missing one, where to set it, and where the others were set.
    init?(resolving layers: [NodeSettingsLayer]) throws(NodeSettingsError) {
        let found = Self.keys.map { entry in (entry.key, layers.first { $0[keyPath: entry.field] != nil }) }
        let given = found.compactMap { key, layer in layer.map { "\(key.rawValue) (from \($0.origin))" } }
        guard !given.isEmpty else { return nil }
        if let missing = found.first(where: { $0.1 == nil })?.0 {
            throw NodeSettingsError(
                source: missing.rawValue,
                problem: "not set, but \(given.joined(separator: " and ")) \(given.count == 1 ? "is" : "are"); "
                    + "TLS needs tls_cert, tls_key and tls_ca together",
                fix: "Pass \(missing.flag), set \(missing.environmentVariable) or add `\(missing.rawValue) = \"...\"` to the "
                    + "config file; or remove the others for plain TCP")
        }
        func path(_ index: Int) -> String { found[index].1?[keyPath: Self.keys[index].field] ?? "" }
        self.init(
            certificate: path(0), privateKey: path(1), ca: path(2),
            origins: found.compactMap { $0.1?.origin }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } })
    }

    /// The three files, set from `origins`.
    public init(certificate: String, privateKey: String, ca: String, origins: [String]) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.ca = ca
        self.origins = origins
    }
}

extension NodeSettingsLayer {
    /// The strategies `discovery` names, as `DiscoverySpec(parsing:)` reads them.
    static let discoveryForms = "static:ID,ID,..., dns-srv:NAME, dns-a:NAME, gossip or gossip:GROUP:PORT (docs/discovery.md)"

    static func discovery(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> DiscoverySpec {
        let kinds = ["static", "dns-srv", "dns-a", "gossip"]
        let kind = String(text.prefix { $0 != ":" })
        guard kinds.contains(kind) else {
            let guess = closest(to: kind, in: kinds).map { "Did you mean \($0)? " } ?? ""
            throw fail("unknown discovery strategy '\(kind)'", "\(guess)Write one of \(discoveryForms)")
        }
        do {
            return try DiscoverySpec(parsing: text)
        } catch {
            guard case .invalidSetting(_, let why) = error else { throw fail("\(error)", "Write one of \(discoveryForms)") }
            throw fail(why, "Write one of \(discoveryForms)")
        }
    }

    /// A DNS server's address, `ip[:port]`, as `DNSResolver` takes it.
    static func dnsServer(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> String {
        let bracketed = text.hasPrefix("[") && text.hasSuffix("]")
        let host = NodeAddress(parsing: text)?.host ?? (bracketed ? String(text.dropFirst().dropLast()) : text)
        guard (try? SocketAddress(ipAddress: host, port: 53)) != nil else {
            throw fail(
                "'\(text)' is not an IP address with an optional port",
                "Write the DNS server's address, not its name, e.g. 10.96.0.10, 127.0.0.1:5353 or [fd00::a]:53")
        }
        return text
    }
}

extension DiscoverySpec {
    /// The same strategy, asking `server` when it is a DNS one.
    func asking(_ server: String?) -> DiscoverySpec {
        switch self {
        case .dnsService(let name, _): .dnsService(name: name, server: server)
        case .dnsAddresses(let name, _): .dnsAddresses(name: name, server: server)
        case .static, .gossip: self
        }
    }

    /// The strategy in words, as `trellis node` prints it once discovery runs.
    public var summary: String {
        switch self {
        case .static(let peers): "static \(peers.map(\.description).sorted().joined(separator: ","))"
        case .dnsService(let name, let server): "dns-srv \(name)" + (server.map { " via \($0)" } ?? "")
        case .dnsAddresses(let name, let server): "dns-a \(name)" + (server.map { " via \($0)" } ?? "")
        case .gossip(let group, let port): "gossip \(group):\(port)"
        }
    }
}
