import XCTest

@testable import TrellisTopology

/// `--dot`: the members graph in Graphviz form.
final class MembersGraphDotTests: XCTestCase {
    func testNodesAreColouredByRoleEdgesDrawnOnceAndDownNodesMarked() throws {
        let scratch = try TopologyScratch()
        let topology = try scratch.parse(minimalTopology + "[nodes.tags_by_node]\nn1 = { role = \"server\" }\nn2 = { role = \"client\" }\n")
        let nodes: [UpReport.NodeReport] = [
            .init(id: "n1@127.0.0.1:7001", members: ["n1@127.0.0.1:7001", "n2@127.0.0.1:7002"], scriptErrors: 0, state: "running"),
            .init(id: "n2@127.0.0.1:7002", members: ["n1@127.0.0.1:7001", "n2@127.0.0.1:7002", "n3@127.0.0.1:7003"], scriptErrors: 0, state: "running"),
            .init(id: "n3@127.0.0.1:7003", members: [], scriptErrors: 0, state: "killed"),
        ]
        let dot = MembersGraphDot.render(nodes, of: topology)
        XCTAssertTrue(dot.hasPrefix("digraph \"t\" {"), dot)
        XCTAssertTrue(dot.contains("// colour by tag role: client = #8ecae6, server = #ffb703"), dot)
        XCTAssertTrue(dot.contains("\"n1\" [fillcolor=\"#ffb703\"];"), dot)
        XCTAssertTrue(dot.contains("\"n3\" [label=\"n3\\nkilled\", style=\"filled,dashed\""), dot)
        XCTAssertEqual(dot.components(separatedBy: "-> \"n2\" [dir=none]").count + dot.components(separatedBy: "-> \"n1\" [dir=none]").count, 3, "one undirected edge for n1-n2: \(dot)")
        XCTAssertTrue(dot.contains("\"n2\" -> \"n3\";"), "a one-way edge keeps its arrow: \(dot)")
        XCTAssertTrue(dot.hasSuffix("}\n"))
    }
}
