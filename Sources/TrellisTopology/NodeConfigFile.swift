import Foundation
import TOMLKit
import TrellisWire

extension NodeSettingsLayer {
    /// Reads the node config file at `path` (see `examples/node.toml`).
    ///
    /// - Throws: ``TopologyError`` naming the file, line and key, for unreadable files, TOML
    ///   syntax, unknown keys (with the closest known one), wrong types and bad values,
    ///   including script paths that name no file.
    public init(configFile path: String) throws(TopologyError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TopologyError(
                kind: .unreadable, file: path, problem: "can't read the node config file (\(error.localizedDescription))",
                fix: "Check that the path is right and the file is readable UTF-8 text")
        }
        try self.init(configText: text, path: path)
    }

    /// Parses a node config file's text; `path` names it in errors, and relative script paths
    /// are taken from its folder.
    public init(configText text: String, path: String) throws(TopologyError) {
        self = try NodeConfigReader(root: TopologyTableReader(document: text, path: path)).read()
    }
}

/// Reads the keys of a node config file into a ``NodeSettingsLayer``.
private struct NodeConfigReader {
    let root: TopologyTableReader

    func read() throws(TopologyError) -> NodeSettingsLayer {
        try root.allowOnly(NodeSettingKey.allCases.map(\.rawValue))
        var layer = NodeSettingsLayer(origin: root.context.file)
        if let name = try root.string("name", example: "name = \"n1\"") {
            layer.name = try checked("name") { fail throws(NodeSettingsError) in try NodeSettingsLayer.nodeName(name, fail) }
        }
        layer.listen = try address("listen")
        layer.admin = try address("admin")
        if let seeds = try root.stringArray("seeds", example: "seeds = [\"n1@10.0.0.1:7100\"]") {
            layer.seeds = []
            for seed in seeds {
                do {
                    layer.seeds?.append(try PeerID(parsing: seed))
                } catch {
                    throw root.error(.invalidValue, "seeds", "\(error)", fix: "List peer ids like \"n1@10.0.0.1:7100\"")
                }
            }
        }
        layer.cluster = try nonEmpty("cluster", example: "cluster = \"prod\"")
        layer.cookie = try nonEmpty("cookie", example: "cookie = \"s3cret\"")
        layer.adminToken = try nonEmpty("admin_token", example: "admin_token = \"s3cret\"")
        layer.overlay = try root.string("overlay", example: "overlay = \"overlays/full_mesh.lua\"").map { path throws(TopologyError) in
            try root.existingScript(path, key: "overlay")
        }
        layer.placement = try root.string("placement", example: "placement = \"placement/region.lua\"").map { path throws(TopologyError) in
            try root.existingScript(path, key: "placement")
        }
        if let actors = try root.stringArray("actors", example: "actors = [\"actors/counter.lua\"]") {
            layer.actors = []
            for actor in actors { layer.actors?.append(try root.existingScript(actor, key: "actors")) }
        }
        if let config = try root.table("overlay_config", example: "[overlay_config] tick = 500") {
            layer.overlayConfig = try TopologyConfig.value(of: config.table, at: config.path, context: root.context)
        }
        if let tags = try root.table("tags", example: "[tags] region = \"eu\"") {
            var result: [String: String] = [:]
            for tag in tags.table.keys {
                result[tag] = try tags.string(tag, example: "\(tag) = \"value\"")
            }
            layer.tags = result
        }
        layer.failureTimeoutMs = try positiveDuration("failure_timeout", example: "2s")
        layer.busyWait = try root.bool("busy_wait", example: "busy_wait = false")
        if let level = try root.string("log_level", example: "log_level = \"info\"") {
            layer.logLevel = try checked("log_level") { fail throws(NodeSettingsError) in try NodeSettingsLayer.logLevel(level, fail) }
        }
        try readNetwork(into: &layer)
        return layer
    }

    /// Discovery and TLS.
    private func readNetwork(into layer: inout NodeSettingsLayer) throws(TopologyError) {
        if let text = try root.string("discovery", example: "discovery = \"dns-srv:_trellis._tcp.example.internal\"") {
            layer.discovery = try checked("discovery") { fail throws(NodeSettingsError) in try NodeSettingsLayer.discovery(text, fail) }
        }
        if let text = try root.string("dns_server", example: "dns_server = \"10.96.0.10\"") {
            layer.dnsServer = try checked("dns_server") { fail throws(NodeSettingsError) in try NodeSettingsLayer.dnsServer(text, fail) }
        }
        layer.discoveryIntervalMs = try positiveDuration("discovery_interval", example: "5s")
        let files = [("tls_cert", \NodeSettingsLayer.tlsCert, "n1.pem"), ("tls_key", \.tlsKey, "n1.key"), ("tls_ca", \.tlsCa, "ca.pem")]
        for (key, field, example) in files {
            layer[keyPath: field] = try root.string(key, example: "\(key) = \"certs/\(example)\"").map { path throws(TopologyError) in
                try root.existingFile(
                    path, key: key, kind: .invalidValue, what: "file", fix: "Point `\(key)` at an existing PEM file (docs/tls.md)")
            }
        }
    }

    private func positiveDuration(_ key: String, example: String) throws(TopologyError) -> Int64? {
        guard let ms = try root.duration(key) else { return nil }
        guard ms > 0 else { throw root.error(.invalidValue, key, "must be positive", fix: "Write e.g. `\(key) = \"\(example)\"`") }
        return Int64(ms)
    }

    /// Runs a check shared with the environment and the command line, reporting its failure
    /// at `key`'s line.
    private func checked<T>(
        _ key: String, _ check: ((String, String) -> NodeSettingsError) throws(NodeSettingsError) -> T
    ) throws(TopologyError) -> T {
        do {
            return try check { NodeSettingsError(source: key, problem: $0, fix: $1) }
        } catch {
            throw root.error(.invalidValue, key, error.problem, fix: error.fix)
        }
    }

    private func address(_ key: String) throws(TopologyError) -> NodeAddress? {
        guard let text = try root.string(key, example: "\(key) = \"127.0.0.1:7100\"") else { return nil }
        return try checked(key) { fail throws(NodeSettingsError) in try NodeSettingsLayer.address(text, fail) }
    }

    private func nonEmpty(_ key: String, example: String) throws(TopologyError) -> String? {
        guard let text = try root.string(key, example: example) else { return nil }
        guard !text.isEmpty else { throw root.error(.invalidValue, key, "must not be empty", fix: "Write a non-empty string or remove the key") }
        return text
    }
}
