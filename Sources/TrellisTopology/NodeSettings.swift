import Logging
import TrellisDiscovery
import TrellisWire

/// A setting of `trellis node`, as named in a config file (`listen = ...`), in the environment
/// (`TRELLIS_LISTEN`) and on the command line (`--listen`).
public enum NodeSettingKey: String, CaseIterable, Sendable {
    case name, listen, seeds, cluster, cookie, overlay
    case overlayConfig = "overlay_config"
    case tags, actors, placement, admin
    case adminToken = "admin_token"
    case failureTimeout = "failure_timeout"
    case logLevel = "log_level"
    case discovery
    case dnsServer = "dns_server"
    case discoveryInterval = "discovery_interval"
    case tlsCert = "tls_cert"
    case tlsKey = "tls_key"
    case tlsCa = "tls_ca"
    case busyWait = "busy_wait"

    /// The environment variable that sets it, e.g. `TRELLIS_FAILURE_TIMEOUT`.
    public var environmentVariable: String { "TRELLIS_" + rawValue.uppercased() }

    /// The flag that sets it: `--listen`, `--tls-cert`, `--seed` (repeatable), ...
    public var flag: String {
        switch self {
        case .seeds: "--seed"
        case .tags: "--tag"
        case .actors: "--actor"
        default: "--" + rawValue.replacingOccurrences(of: "_", with: "-")
        }
    }

    /// Settings that hold several values: repeated flags, comma-separated in the environment.
    public var isList: Bool { self == .seeds || self == .tags || self == .actors }
}

/// A host and port to listen on, written `host:port` (`[::1]:7101` for IPv6).
public struct NodeAddress: Sendable, Equatable, CustomStringConvertible {
    /// A name or address; IPv6 without brackets.
    public var host: String
    /// 0 picks any free port.
    public var port: Int

    /// The address `host:port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; `nil` when it is not one.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" || $0 == "@" }),
              host.contains(":") == text.hasPrefix("[")
        else { return nil }
        self.init(host: host, port: port)
    }

    /// `host:port`, with the host in brackets when it is an IPv6 address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One source of settings for `trellis node`: the config file, the environment or the command
/// line. `nil` means the source does not set it; ``NodeSettings/init(resolving:)`` takes each
/// setting whole from the first source that sets it. The fields mean what ``NodeSettings``'s do.
public struct NodeSettingsLayer: Sendable, Equatable {
    /// `name`: the node's name.
    public var name: String?
    /// `listen`: where the node listens.
    public var listen: NodeAddress?
    /// `seeds`: peers to join through.
    public var seeds: [PeerID]?
    /// `cluster`: the cluster's name.
    public var cluster: String?
    /// `cookie`: the cluster's shared secret.
    public var cookie: String?
    /// `overlay`: the overlay script's path.
    public var overlay: String?
    /// `overlay_config`: the overlay's `ctx.config`.
    public var overlayConfig: Value?
    /// `tags`: tags announced to peers.
    public var tags: [String: String]?
    /// `actors`: Lua actor scripts' paths.
    public var actors: [String]?
    /// `placement`: the placement script's path.
    public var placement: String?
    /// `admin`: where the admin interface listens.
    public var admin: NodeAddress?
    /// `admin_token`: the admin interface's bearer token.
    public var adminToken: String?
    /// `failure_timeout`, in milliseconds.
    public var failureTimeoutMs: Int64?
    /// `log_level`.
    public var logLevel: Logger.Level?
    /// `discovery`: the strategy that finds peers, without its DNS server (see `dnsServer`).
    public var discovery: DiscoverySpec?
    /// `dns_server`: the DNS server of the `dns-*` strategies, `ip[:port]`.
    public var dnsServer: String?
    /// `discovery_interval`, in milliseconds.
    public var discoveryIntervalMs: Int64?
    /// `tls_cert`: this node's TLS certificate's path.
    public var tlsCert: String?
    /// `tls_key`: its private key's path.
    public var tlsKey: String?
    /// `tls_ca`: the cluster's CA certificate's path.
    public var tlsCa: String?
    /// `busy_wait`: whether event loops poll for a moment after network I/O instead of sleeping (`on` or `off`).
    public var busyWait: Bool?
    /// Where the layer's settings come from, as errors that involve several settings name it:
    /// a config file's path, `the environment` or `the command line`.
    public var origin: String

    /// A layer that sets nothing, from `origin`.
    public init(origin: String = "the command line") {
        self.origin = origin
    }

    /// The settings given as text, as flags and environment variables give them: one value per
    /// setting, several for lists. `source` names where a setting came from in errors
    /// (`--listen`, `TRELLIS_LISTEN`).
    public init(
        texts: [NodeSettingKey: [String]], origin: String = "the command line", source: (NodeSettingKey) -> String
    ) throws(NodeSettingsError) {
        self.init(origin: origin)
        for key in NodeSettingKey.allCases {
            guard let values = texts[key], let last = values.last else { continue }
            try set(key, values: values, last: last, source: source(key))
        }
    }

    /// The settings in `environment` (its `TRELLIS_*` variables; lists comma-separated).
    public init(environment: [String: String]) throws(NodeSettingsError) {
        var texts: [NodeSettingKey: [String]] = [:]
        for key in NodeSettingKey.allCases {
            guard let text = environment[key.environmentVariable], !text.isEmpty else { continue }
            texts[key] = key.isList ? text.split(separator: ",").map { String($0).trimmed } : [text]
        }
        try self.init(texts: texts, origin: "the environment", source: \.environmentVariable)
    }

    /// Warnings for `TRELLIS_*` variables that set nothing, e.g. misspelt ones; `alsoRead`
    /// lists the other variables the command reads.
    public static func unknownVariables(in environment: [String: String], alsoRead: Set<String>) -> [String] {
        let known = NodeSettingKey.allCases.map(\.environmentVariable) + alsoRead.sorted()
        return environment.keys.sorted().filter { $0.hasPrefix("TRELLIS_") && !known.contains($0) }.map { name in
            let guess = closest(to: name, in: known).map { "; did you mean \($0)?" } ?? ""
            return "\(name) is not a setting of `trellis node` and is ignored\(guess)"
        }
    }

    private mutating func set(_ key: NodeSettingKey, values: [String], last: String, source: String) throws(NodeSettingsError) {
        func fail(_ problem: String, _ fix: String) -> NodeSettingsError {
            NodeSettingsError(source: source, problem: problem, fix: fix)
        }
        let verbatim: [NodeSettingKey: WritableKeyPath<Self, String?>] = [
            .cluster: \.cluster, .cookie: \.cookie, .adminToken: \.adminToken, .overlay: \.overlay, .placement: \.placement,
            .tlsCert: \.tlsCert, .tlsKey: \.tlsKey, .tlsCa: \.tlsCa,
        ]
        if let field = verbatim[key] {
            self[keyPath: field] = last
            return
        }
        switch key {
        case .name: name = try Self.nodeName(last, fail)
        case .listen: listen = try Self.address(last, fail)
        case .admin: admin = try Self.address(last, fail)
        case .cluster, .cookie, .adminToken, .overlay, .placement, .tlsCert, .tlsKey, .tlsCa: break  // set as written, above
        case .actors: actors = values
        case .overlayConfig:
            do { overlayConfig = try JSONConfig.value(last) } catch { throw fail("not valid JSON (\(error.message))", "Pass a JSON object, e.g. {\"tick\": 500}") }
        case .seeds:
            seeds = []
            for text in values {
                do { seeds?.append(try PeerID(parsing: text)) } catch { throw fail("\(error)", "List peer ids like n1@127.0.0.1:7101") }
            }
        case .tags:
            var tags: [String: String] = [:]
            for pair in values {
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                    throw fail("tag '\(pair)' is not key=value", "Write tags like region=eu")
                }
                tags[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            }
            self.tags = tags
        case .failureTimeout: failureTimeoutMs = try Self.duration(last, fail)
        case .logLevel: logLevel = try Self.logLevel(last, fail)
        case .discovery: discovery = try Self.discovery(last, fail)
        case .dnsServer: dnsServer = try Self.dnsServer(last, fail)
        case .discoveryInterval: discoveryIntervalMs = try Self.duration(last, fail)
        case .busyWait: busyWait = try Self.onOff(last, fail)
        }
    }

    static func nodeName(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> String {
        guard !text.isEmpty, text.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
            throw fail("'\(text)' is not a valid node name", "Use letters, digits, '_', '-' and '.' only, e.g. n1")
        }
        return text
    }

    static func address(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> NodeAddress {
        guard let address = NodeAddress(parsing: text) else {
            throw fail("'\(text)' is not host:port", "Write e.g. 127.0.0.1:7101, [::1]:7101, or port 0 for any free port")
        }
        return address
    }

    static func duration(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> Int64 {
        guard let ms = Int64(text) ?? TopologyDuration.milliseconds(text).map(Int64.init), ms > 0 else {
            throw fail("'\(text)' is not a positive duration", "Write milliseconds (2000) or a duration like 2s or 500ms")
        }
        return ms
    }

    static func onOff(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> Bool {
        switch text.lowercased() {
        case "on", "true", "yes", "1": return true
        case "off", "false", "no", "0": return false
        default: throw fail("'\(text)' is neither on nor off", "Write on or off")
        }
    }

    static func logLevel(_ text: String, _ fail: (String, String) -> NodeSettingsError) throws(NodeSettingsError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: text) else {
            let levels = Logger.Level.allCases.map(\.rawValue)
            let guess = (levels.first { !text.isEmpty && $0.hasPrefix(text.lowercased()) } ?? closest(to: text.lowercased(), in: levels))
                .map { "Did you mean \($0)? " } ?? ""
            throw fail("unknown log level '\(text)'", "\(guess)Use one of \(levels.joined(separator: ", "))")
        }
        return level
    }
}

/// A setting from the environment or the command line that cannot be used, or one that is
/// missing, and what to do about it. Config files report with ``TopologyError``.
public struct NodeSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the setting came from: `--listen`, `TRELLIS_LISTEN`, or the setting's name when
    /// it is missing everywhere.
    public var source: String
    /// What is wrong.
    public var problem: String
    /// What to do about it.
    public var fix: String

    /// An error about `source`.
    public init(source: String, problem: String, fix: String) {
        self.source = source
        self.problem = problem
        self.fix = fix
    }

    /// `source: problem. fix.`
    public var description: String { "\(source): \(problem). \(fix.hasSuffix(".") || fix.hasSuffix("?") ? fix : fix + ".")" }
}

extension String {
    var trimmed: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
