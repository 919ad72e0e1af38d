import Foundation
import Logging
import Trellis
import TrellisLua
import TrellisWire

/// What `trellis node` runs with: each setting taken whole from the first source that sets it
/// (command line, then environment, then config file), else its default.
public struct NodeSettings: Sendable, Equatable {
    /// The node's name, the `name` of its id `name@host:port`. Required.
    public var name: String
    /// Where the node listens; default `127.0.0.1:0` (any free port).
    public var listen: NodeAddress
    /// Peers to join through; default none.
    public var seeds: [PeerID]
    /// The cluster's name; default `trellis`.
    public var cluster: String
    /// The cluster's shared secret. Required.
    public var cookie: String
    /// The overlay script's path. Required.
    public var overlay: String
    /// The overlay's `ctx.config`; default an empty table.
    public var overlayConfig: Value
    /// Tags announced to peers; default none.
    public var tags: [String: String]
    /// Lua actor scripts' paths; default none.
    public var actors: [String]
    /// The placement script's path; `nil` places with built-in rendezvous hashing.
    public var placement: String?
    /// Where the admin interface listens; `nil` (the default) runs none.
    public var admin: NodeAddress?
    /// The admin interface's bearer token; required with `admin`.
    public var adminToken: String?
    /// Heartbeat silence after which a peer is reported down, in milliseconds; default 2000.
    public var failureTimeoutMs: Int64
    /// The log level; default `warning`.
    public var logLevel: Logger.Level
    /// The strategy that finds peers and joins them, with its DNS server; `nil` (the default)
    /// finds none.
    public var discovery: DiscoverySpec?
    /// Milliseconds between two discovery polls (before jitter); default 5000.
    public var discoveryIntervalMs: Int64
    /// The files of mutual TLS between nodes; `nil` (the default) is plain TCP.
    public var tls: NodeTLSFiles?
    /// Whether event loops poll for a moment after network I/O instead of sleeping (`BusyWait.lowLatency`); default off.
    public var busyWait: Bool

    /// Resolves `layers`, highest precedence first.
    ///
    /// - Throws: ``NodeSettingsError`` when a required setting (name, overlay, cookie) is set
    ///   nowhere, the admin interface has no token, or only some of the TLS files are set.
    public init(resolving layers: [NodeSettingsLayer]) throws(NodeSettingsError) {
        func first<T>(_ field: KeyPath<NodeSettingsLayer, T?>) -> T? { layers.lazy.compactMap { $0[keyPath: field] }.first }
        func required<T>(_ field: KeyPath<NodeSettingsLayer, T?>, _ key: NodeSettingKey, example: String, why: String = "")
            throws(NodeSettingsError) -> T {
            guard let value = first(field) else {
                throw NodeSettingsError(
                    source: key.rawValue, problem: "not set\(why)",
                    fix: "Pass \(key.flag), set \(key.environmentVariable) or add `\(example)` to the config file")
            }
            return value
        }
        name = try required(\.name, .name, example: "name = \"n1\"")
        overlay = try required(\.overlay, .overlay, example: "overlay = \"overlays/full_mesh.lua\"")
        cookie = try required(\.cookie, .cookie, example: "cookie = \"...\"", why: " (every node of a cluster needs the same one)")
        listen = first(\.listen) ?? NodeAddress(host: "127.0.0.1", port: 0)
        seeds = first(\.seeds) ?? []
        cluster = first(\.cluster) ?? "trellis"
        overlayConfig = first(\.overlayConfig) ?? .map([:])
        tags = first(\.tags) ?? [:]
        actors = first(\.actors) ?? []
        placement = first(\.placement)
        admin = first(\.admin)
        adminToken = first(\.adminToken)
        failureTimeoutMs = first(\.failureTimeoutMs) ?? 2_000
        logLevel = first(\.logLevel) ?? .warning
        discovery = first(\.discovery).map { $0.asking(first(\.dnsServer)) }
        discoveryIntervalMs = first(\.discoveryIntervalMs) ?? 5_000
        tls = try NodeTLSFiles(resolving: layers)
        busyWait = first(\.busyWait) ?? false
        for (key, value) in [(NodeSettingKey.cookie, cookie), (.cluster, cluster)] where value.isEmpty {
            throw NodeSettingsError(source: key.rawValue, problem: "is empty", fix: "Set it to a non-empty string")
        }
        let tokenExample = "admin_token = \"...\""
        if admin != nil, try required(\.adminToken, .adminToken, example: tokenExample, why: " (the admin interface needs one)").isEmpty {
            throw NodeSettingsError(source: "admin_token", problem: "is empty", fix: "Set a non-empty token for the admin interface")
        }
    }

    /// How often discovery polls.
    public var discoverySettings: DiscoverySettings { DiscoverySettings(interval: .milliseconds(discoveryIntervalMs)) }

    /// The node's configuration: the overlay and placement scripts read, `logger` at `logLevel`.
    ///
    /// - Throws: `NodeError` when a script cannot be read.
    public func configuration(logger: Logger) throws(NodeError) -> NodeConfiguration {
        var configuration = try NodeConfiguration(name: name, clusterName: cluster, cookie: cookie, overlayPath: overlay)
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.overlayConfig = overlayConfig
        configuration.tags = tags
        configuration.membership.failureTimeout = failureTimeoutMs
        configuration.busyWait = busyWait ? .lowLatency : .off
        configuration.logger = logger
        configuration.logger.logLevel = logLevel
        if let placement {
            let file: ScriptFile
            do { file = try ScriptFile(contentsOf: placement) } catch { throw .script(error) }
            configuration.placementSource = file.source
            configuration.placementFileName = file.fileName
        }
        return configuration
    }
}

/// JSON text to `Value`, for the overlay config given in the environment or on the command line.
enum JSONConfig {
    struct Failure: Error {
        let message: String
    }

    /// The value of a JSON object.
    static func value(_ text: String) throws(Failure) -> Value {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        } catch {
            throw Failure(message: error.localizedDescription)
        }
        guard object is [String: Any] else { throw Failure(message: "not an object") }
        return Value(jsonObject: object)
    }
}
