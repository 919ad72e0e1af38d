/// The members graph at one instant, by node name: every node with its state, and an edge
/// from each node to each other node it lists as a member.
///
/// This is what the SVG writer draws and what the live view serves as `/graph.json`. Nodes keep
/// the order they are given in (the topology's order), edges are sorted, so the same reports
/// always give the same graph.
public struct MembersGraph: Codable, Sendable, Equatable {
    /// One node: its name, full id, state (`running`, `killed`, `left` or `not started`) and
    /// the names of the other nodes it lists.
    public struct Node: Codable, Sendable, Equatable {
        public var name: String
        public var id: String
        public var state: String
        /// The other nodes of the graph that this node lists as members, sorted by name.
        public var members: [String]
        public var scriptErrors: Int

        enum CodingKeys: String, CodingKey {
            case name, id, state, members
            case scriptErrors = "script_errors"
        }
    }

    /// `from` lists `to` as a member. A mutual edge (each lists the other) appears once, from
    /// the node whose name sorts first.
    public struct Edge: Codable, Sendable, Equatable {
        public var from: String
        public var to: String
        public var mutual: Bool
    }

    /// What the graph shows: the topology's name.
    public var title: String
    /// Milliseconds since the run started, when known.
    public var elapsedMs: Int?
    public var nodes: [Node]
    public var edges: [Edge]

    enum CodingKeys: String, CodingKey {
        case title, nodes, edges
        case elapsedMs = "elapsed_ms"
    }

    /// The graph of `reports` (a report's nodes, or a running topology's at one instant).
    ///
    /// Members that are not among `reports` are left out, and so is a node listing itself.
    public init(title: String, reports: [UpReport.NodeReport], elapsedMs: Int? = nil) {
        func name(_ id: String) -> String { String(id.split(separator: "@").first ?? Substring(id)) }
        let names = Set(reports.map { name($0.id) })
        let nodes = reports.map { report in
            let own = name(report.id)
            let members = Set(report.members.map(name)).filter { $0 != own && names.contains($0) }.sorted()
            return Node(name: own, id: report.id, state: report.state, members: members, scriptErrors: report.scriptErrors)
        }
        let lists = Dictionary(nodes.map { ($0.name, Set($0.members)) }, uniquingKeysWith: { first, _ in first })
        var edges: [Edge] = []
        for node in nodes {
            for to in node.members {
                let mutual = lists[to]?.contains(node.name) == true
                if mutual && to < node.name { continue }
                edges.append(Edge(from: node.name, to: to, mutual: mutual))
            }
        }
        self.title = title
        self.elapsedMs = elapsedMs
        self.nodes = nodes
        self.edges = edges.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
    }
}
