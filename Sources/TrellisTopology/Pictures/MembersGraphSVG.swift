import Foundation

/// The members graph as a standalone SVG picture: what `--svg FILE` writes and what the live
/// view shows. No Graphviz needed.
///
/// Nodes sit on a circle in the graph's order, the first at the top, going clockwise; each is
/// filled with the colour of its state (see `stateColours`) and labelled with its name, and a
/// node that is not running also with its state. A pair of nodes that list each other is joined
/// by a plain grey line; a node listing another that does not list it back gets an orange
/// arrow towards it. The same graph always gives the same text.
public enum MembersGraphSVG {
    /// The fill of a node per state; any other state is drawn in `otherColour`.
    public static let stateColours: KeyValuePairs<String, String> = [
        "running": "#90be6d", "killed": "#e63946", "left": "#adb5bd", "not started": "#ffffff",
    ]
    static let otherColour = "#e9ecef"
    static let mutualColour = "#6c757d"
    static let oneWayColour = "#f77f00"

    static let nodeRadius = 20.0
    /// Room around the circle for the labels.
    static let margin = 110.0
    /// Room above the circle for the title and the legend.
    static let header = 56.0

    /// Renders `graph`.
    public static func render(_ graph: MembersGraph) -> String {
        let count = graph.nodes.count
        let circle = max(130, Double(count) * (2 * nodeRadius + 36) / (2 * .pi))
        let size = 2 * (circle + margin)
        let centre = (x: size / 2, y: header + size / 2)
        let places: [String: Place] = Dictionary(
            graph.nodes.enumerated().map { index, node in
                let angle = 2 * .pi * Double(index) / Double(max(count, 1)) - .pi / 2
                let radius = count == 1 ? 0 : circle
                return (node.name, Place(x: centre.x + radius * cos(angle), y: centre.y + radius * sin(angle), angle: angle))
            },
            uniquingKeysWith: { first, _ in first }
        )

        var lines = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(number(size))\" height=\"\(number(size + header))\" "
                + "viewBox=\"0 0 \(number(size)) \(number(size + header))\" font-family=\"Helvetica, Arial, sans-serif\">",
            "  <title>\(escaped(graph.title)): members graph</title>",
            "  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
                + "orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"\(oneWayColour)\"/></marker></defs>",
            "  <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>",
            "  <text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">\(escaped(summary(graph)))</text>",
            legend(),
            "  <g class=\"edges\" fill=\"none\" stroke-width=\"1.5\">",
        ]
        for edge in graph.edges {
            guard let from = places[edge.from], let to = places[edge.to] else { continue }
            lines.append(line(edge, from: from, to: to))
        }
        lines.append("  </g>")
        lines.append("  <g class=\"nodes\" font-size=\"12\">")
        for node in graph.nodes {
            guard let place = places[node.name] else { continue }
            lines.append(contentsOf: drawing(node, at: place))
        }
        lines += ["  </g>", "</svg>"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The title line: the topology's name and how many nodes are in which state.
    static func summary(_ graph: MembersGraph) -> String {
        var counts: [String: Int] = [:]
        for node in graph.nodes { counts[node.state, default: 0] += 1 }
        let states = counts.keys.sorted().map { "\(counts[$0]!) \($0)" }.joined(separator: ", ")
        return "\(graph.title): \(graph.nodes.count) nodes" + (states.isEmpty ? "" : " (\(states))")
    }

    private static func legend() -> String {
        let entries = stateColours.enumerated().map { index, entry in
            let x = 12 + Double(index) * 96
            return "<circle cx=\"\(number(x + 6))\" cy=\"42\" r=\"6\" fill=\"\(entry.value)\" stroke=\"#343a40\"/>"
                + "<text x=\"\(number(x + 16))\" y=\"46\">\(entry.key)</text>"
        }
        return "  <g class=\"legend\" font-size=\"12\">" + entries.joined() + "</g>"
    }

    /// Where a node sits, and its angle on the circle (its label goes outwards).
    struct Place {
        let x: Double
        let y: Double
        let angle: Double
    }

    private static func line(_ edge: MembersGraph.Edge, from: Place, to: Place) -> String {
        let (dx, dy) = (to.x - from.x, to.y - from.y)
        let length = max((dx * dx + dy * dy).squareRoot(), 1)
        let trim = min(nodeRadius + 1, length / 2)
        let start = (x: from.x + dx / length * trim, y: from.y + dy / length * trim)
        let end = (x: to.x - dx / length * trim, y: to.y - dy / length * trim)
        let ends = "x1=\"\(number(start.x))\" y1=\"\(number(start.y))\" x2=\"\(number(end.x))\" y2=\"\(number(end.y))\""
        let names = "data-from=\"\(escaped(edge.from))\" data-to=\"\(escaped(edge.to))\""
        if edge.mutual {
            return "    <line class=\"mutual\" \(names) \(ends) stroke=\"\(mutualColour)\"/>"
        }
        return "    <line class=\"one-way\" \(names) \(ends) stroke=\"\(oneWayColour)\" marker-end=\"url(#arrow)\"/>"
    }

    /// A node's circle, and its label outside the circle, away from the centre: the name, and
    /// for a node that is not running its state after it.
    private static func drawing(_ node: MembersGraph.Node, at place: Place) -> [String] {
        let fill = stateColours.first { $0.key == node.state }?.value ?? otherColour
        let dashed = node.state == "running" ? "" : " stroke-dasharray=\"4 3\""
        let (cosine, sine) = (cos(place.angle), sin(place.angle))
        let anchor = cosine > 0.35 ? "start" : cosine < -0.35 ? "end" : "middle"
        let label = (x: place.x + (nodeRadius + 5) * cosine, y: place.y + (nodeRadius + 5) * sine + 4 + 7 * sine)
        let state = node.state == "running" ? "" : "<tspan font-size=\"10\" fill=\"#6c757d\"> \(escaped(node.state))</tspan>"
        return [
            "    <g class=\"node\" data-name=\"\(escaped(node.name))\" data-state=\"\(escaped(node.state))\">",
            "      <title>\(escaped(node.id)): \(escaped(node.state)), lists \(node.members.count) other nodes</title>",
            "      <circle cx=\"\(number(place.x))\" cy=\"\(number(place.y))\" r=\"\(number(nodeRadius))\" fill=\"\(fill)\" stroke=\"#343a40\"\(dashed)/>",
            "      <text x=\"\(number(label.x))\" y=\"\(number(label.y))\" text-anchor=\"\(anchor)\" stroke=\"#ffffff\" stroke-width=\"3\" "
                + "paint-order=\"stroke\">\(escaped(node.name))\(state)</text>",
            "    </g>",
        ]
    }

    /// `value` with one decimal, the same on every machine.
    static func number(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        return "\(sign)\(abs(tenths) / 10).\(abs(tenths) % 10)"
    }

    /// `text` safe inside XML text and double-quoted attributes.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
