import Foundation
import TOMLKit
import TrellisWire

extension Topology {
    /// The most nodes a topology may have (`trellis sim` runs them all).
    public static let maximumNodes = 100_000
    /// The most nodes `trellis up` starts in one process.
    public static let maximumRealNodes = 1024
    /// The time limit when the file sets no `timeout`.
    public static let defaultTimeoutMs = 30_000

    /// Reads and parses the topology file at `path`; see ``parse(_:path:)``.
    public static func load(path: String) throws(TopologyError) -> Topology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TopologyError(
                kind: .unreadable, file: path, problem: "can't read the topology file (\(error.localizedDescription))",
                fix: "Check that the path is right and the file is readable UTF-8 text")
        }
        return try parse(text, path: path)
    }

    /// Parses and validates a topology file's text.
    ///
    /// - Parameters:
    ///   - text: The TOML text.
    ///   - path: Where the text came from. Errors name it, and a relative `overlay` is resolved
    ///     against its folder (a relative `path` against the current directory).
    /// - Throws: ``TopologyError`` for invalid TOML and for anything the format doesn't allow,
    ///   including an overlay script that doesn't exist.
    public static func parse(_ text: String, path: String) throws(TopologyError) -> Topology {
        try TopologyParser(root: TopologyTableReader(document: text, path: path)).parse()
    }
}

/// Builds a ``Topology`` from a parsed document, one section at a time.
struct TopologyParser {
    let root: TopologyTableReader
    var file: String { root.context.file }

    func parse() throws(TopologyError) -> Topology {
        try root.allowOnly([
            "name", "cluster", "cookie", "overlay", "timeout", "host", "overlay_config", "nodes", "join", "schedule", "expect",
            "report", "placement", "capabilities", "workload", "tls",
        ])
        let name = try root.require(root.string("name", example: "name = \"my-cluster\""), "name", example: "name = \"my-cluster\"")
        try nonEmpty(name, "name", in: root)
        let cluster = try root.string("cluster", example: "cluster = \"\(name)\"") ?? name
        try nonEmpty(cluster, "cluster", in: root)
        let cookie = try root.string("cookie", example: "cookie = \"s3cret\"")
        if let cookie { try nonEmpty(cookie, "cookie", in: root) }
        let host = try parseHost()
        let overlayPath = try parseOverlay()
        let overlayConfig = try parseOverlayConfig()
        let timeoutMs = try root.duration("timeout") ?? Topology.defaultTimeoutMs
        guard timeoutMs > 0 else {
            throw root.error(.invalidValue, "timeout", "the time limit must be positive", fix: "Write e.g. `timeout = \"30s\"`")
        }

        guard let nodesTable = try root.table("nodes", example: "[nodes] count = 3") else {
            throw root.error(.missingKey, "nodes", "missing the [nodes] table", fix: "Add a `[nodes]` table with `count = 3` or `names = [\"a\", \"b\"]`")
        }
        var (nodes, defaultTags) = try parseNodes(nodesTable)
        let plans = TopologyPlanParser(nodeNames: nodes.map(\.name), timeoutMs: timeoutMs)
        let join = try plans.parseJoin(root.table("join", example: "[join] plan = \"seed\""))
        let scheduleParser = TopologyScheduleParser(plans: plans)
        let (schedule, added) = try scheduleParser.parse(root.tables("schedule", example: "[[schedule]] at = \"2s\" action = \"leave\" node = \"n1\""))
        let firstPort = nodes[0].port
        for (name, atMs) in added {
            nodes.append(NodeSpec(name: name, port: firstPort == 0 ? 0 : firstPort + nodes.count, tags: defaultTags, addedAtMs: atMs))
        }
        let expectations = try TopologyPlanParser(nodeNames: nodes.map(\.name), timeoutMs: timeoutMs).parseExpectations(
            root.tables("expect", example: "[[expect]] kind = \"members\" count = 3 within = \"5s\""), schedule: schedule)
        let reports = try scheduleParser.parseReports(root.tables("report", example: "[[report]] at = \"10s\""))
        let processes = TopologyProcessParser(root: root, nodeNames: nodes.map(\.name))
        return Topology(
            name: name, cluster: cluster, cookie: cookie, overlayPath: overlayPath, overlayConfig: overlayConfig,
            timeoutMs: timeoutMs, host: host, nodes: nodes, join: join, schedule: schedule, expectations: expectations,
            reports: reports, placementPath: try processes.parsePlacement(), capabilities: try processes.parseCapabilities(),
            workloads: try processes.parseWorkloads(), tls: try parseTLS())
    }

    /// `[tls]`: the certificate, key and CA every node uses (docs/tls.md).
    private func parseTLS() throws(TopologyError) -> NodeTLSFiles? {
        guard let tls = try root.table("tls", example: "[tls] cert = \"certs/node.pem\"") else { return nil }
        try tls.allowOnly(["cert", "key", "ca"])
        var paths: [String] = []
        for (key, example) in [("cert", "certs/node.pem"), ("key", "certs/node.key"), ("ca", "certs/ca.pem")] {
            let path = try tls.require(tls.string(key, example: "\(key) = \"\(example)\""), key, example: "\(key) = \"\(example)\"")
            paths.append(
                try tls.existingFile(
                    path, key: key, kind: .invalidValue, what: "file", fix: "Point `tls.\(key)` at an existing PEM file (docs/tls.md)"))
        }
        return NodeTLSFiles(certificate: paths[0], privateKey: paths[1], ca: paths[2], origins: [file])
    }

    private func nonEmpty(_ value: String, _ key: String, in table: TopologyTableReader) throws(TopologyError) {
        guard value.isEmpty else { return }
        throw table.error(.invalidValue, key, "must not be empty", fix: "Write a non-empty string or remove the key")
    }

    private func parseHost() throws(TopologyError) -> String {
        let host = try root.string("host", example: "host = \"127.0.0.1\"") ?? "127.0.0.1"
        guard TopologyHost.isLoopback(host) else {
            throw root.error(
                .notLoopback, "host", "\"\(host)\" is not a loopback address; `trellis up` only starts nodes on this machine",
                fix: "Use an address in 127.0.0.0/8 such as \"127.0.0.1\", or \"::1\"")
        }
        return host
    }

    private func parseOverlay() throws(TopologyError) -> String {
        let example = "overlay = \"../../plugins/overlays/full_mesh.lua\""
        let overlay = try root.require(root.string("overlay", example: example), "overlay", example: example)
        try nonEmpty(overlay, "overlay", in: root)
        return try root.existingScript(overlay, key: "overlay")
    }

    private func parseOverlayConfig() throws(TopologyError) -> Value {
        guard let config = try root.table("overlay_config", example: "[overlay_config] tick = 500") else { return .map([]) }
        return try TopologyConfig.value(of: config.table, at: config.path, context: root.context)
    }

    /// The nodes, and the tags every node gets by default.
    private func parseNodes(_ table: TopologyTableReader) throws(TopologyError) -> ([NodeSpec], [String: String]) {
        try table.allowOnly(["count", "names", "base_port", "tags", "tags_by_node"])
        let names = try nodeNames(table)
        let basePort = try table.int("base_port", example: "base_port = 7000") ?? 0
        guard basePort == 0 || (basePort >= 1 && basePort + names.count - 1 <= 65535) else {
            throw table.error(
                .invalidValue, "base_port", "ports \(basePort)...\(basePort + names.count - 1) are not all in 1...65535",
                fix: "Use 0 for any free port, or a base port from 1 to \(65536 - names.count)")
        }
        let defaults = try tags(in: table, "tags", example: "tags = { zone = \"a\" }") ?? [:]
        var perNode: [String: [String: String]] = [:]
        if let byNode = try table.table("tags_by_node", example: "[nodes.tags_by_node] n1 = { role = \"seed\" }") {
            for key in byNode.table.keys.sorted() {
                guard names.contains(key) else { throw unknownNode(key, in: byNode, key: key, names: names) }
                perNode[key] = try tags(in: byNode, key, example: "\(key) = { role = \"seed\" }")
            }
        }
        let specs = names.enumerated().map { index, name in
            NodeSpec(
                name: name, port: basePort == 0 ? 0 : basePort + index,
                tags: defaults.merging(perNode[name] ?? [:]) { _, override in override })
        }
        return (specs, defaults)
    }

    private func nodeNames(_ table: TopologyTableReader) throws(TopologyError) -> [String] {
        let count = try table.int("count", example: "count = 5")
        let names = try table.stringArray("names", example: "names = [\"a\", \"b\", \"c\"]")
        let limit = Topology.maximumNodes
        switch (count, names) {
        case (let count?, nil):
            guard (1...limit).contains(count) else {
                throw table.error(.invalidValue, "count", "\(count) nodes is out of range", fix: "Use a count from 1 to \(limit)")
            }
            return (1...count).map { "n\($0)" }
        case (nil, let names?):
            guard (1...limit).contains(names.count) else {
                throw table.error(.invalidValue, "names", "\(names.count) names is out of range", fix: "List from 1 to \(limit) names")
            }
            var seen: Set<String> = []
            for name in names {
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
                    throw table.error(.invalidValue, "names", "\"\(name)\" is not a valid node name", fix: "Use letters, digits, '_', '-' and '.' only")
                }
                guard seen.insert(name).inserted else {
                    throw table.error(.duplicateName, "names", "\"\(name)\" is listed twice", fix: "Give every node a different name")
                }
            }
            return names
        case (nil, nil):
            throw table.error(.missingKey, "count", "missing the node count", fix: "Add `count = 3`, or list names with `names = [\"a\", \"b\"]`")
        case (_?, _?):
            throw table.error(.invalidValue, "names", "both `count` and `names` are given", fix: "Keep exactly one of them")
        }
    }

    private func tags(in table: TopologyTableReader, _ key: String, example: String) throws(TopologyError) -> [String: String]? {
        guard let tags = try table.table(key, example: example) else { return nil }
        var result: [String: String] = [:]
        for tag in tags.table.keys {
            result[tag] = try tags.string(tag, example: "\(tag) = \"value\"")
        }
        return result
    }
}

/// The error for a node name that is not in the topology, suggesting the closest one.
func unknownNode(_ name: String, in table: TopologyTableReader, key: String, names: [String]) -> TopologyError {
    let suggestion = closest(to: name, in: names).map { "Did you mean \"\($0)\"? " } ?? ""
    let known = names.count <= 8 ? names.joined(separator: ", ") : "\(names[0]) ... \(names[names.count - 1])"
    return table.error(.unknownNode, key, "no node is named \"\(name)\"", fix: "\(suggestion)Nodes are: \(known)")
}
