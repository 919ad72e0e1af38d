/// The members graph at the end of a run in Graphviz's DOT language: what `--dot FILE` writes.
///
/// Each node is a vertex filled with a colour per value of its `role` tag (or, without one, of
/// the first tag name in alphabetical order); nodes that are not running are grey, dashed and
/// labelled with their state. An edge goes from a node to each member it lists; a pair that
/// lists each other is drawn once, without arrowheads.
public enum MembersGraphDot {
    static let palette = ["#8ecae6", "#ffb703", "#90be6d", "#f28482", "#cdb4db", "#f6bd60", "#84a59d", "#b5838d"]

    /// Renders `nodes` (as in a report) of `topology`.
    public static func render(_ nodes: [UpReport.NodeReport], of topology: Topology) -> String {
        let tags = Dictionary(uniqueKeysWithValues: topology.nodes.map { ($0.name, $0.tags) })
        let colourTag = tags.values.contains { $0["role"] != nil } ? "role" : tags.values.flatMap(\.keys).min()
        let values = Array(Set(tags.values.compactMap { tag in colourTag.flatMap { tag[$0] } })).sorted()
        func name(_ id: String) -> String { String(id.split(separator: "@").first ?? Substring(id)) }
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }

        var lines = ["digraph \(quoted(topology.name)) {", "  node [shape=circle, style=filled, fontname=\"Helvetica\"];"]
        if let colourTag, !values.isEmpty {
            let legend = values.enumerated().map { "\($1) = \(palette[$0 % palette.count])" }.joined(separator: ", ")
            lines.append("  // colour by tag \(colourTag): \(legend)")
        }
        for node in nodes {
            let label = name(node.id)
            if node.state == "running" {
                let value = colourTag.flatMap { tags[label]?[$0] }
                let colour = value.flatMap { values.firstIndex(of: $0) }.map { palette[$0 % palette.count] } ?? "#e9ecef"
                lines.append("  \(quoted(label)) [fillcolor=\(quoted(colour))];")
            } else {
                let twoLines = quoted(label).dropLast() + "\\n" + node.state + "\""
                lines.append("  \(quoted(label)) [label=\(twoLines), style=\"filled,dashed\", fillcolor=\"#adb5bd\"];")
            }
        }
        let lists = Dictionary(uniqueKeysWithValues: nodes.map { (name($0.id), Set($0.members.map(name))) })
        for node in nodes {
            let from = name(node.id)
            for to in node.members.map(name).sorted() where to != from {
                let mutual = lists[to]?.contains(from) == true
                if mutual && to < from { continue }
                lines.append("  \(quoted(from)) -> \(quoted(to))\(mutual ? " [dir=none]" : "");")
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
