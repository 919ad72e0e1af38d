import Foundation
import XCTest

@testable import TrellisTopology

#if canImport(FoundationXML)
import FoundationXML
#endif

/// `--svg`: the members graph drawn by trellis itself.
final class MembersGraphSVGTests: XCTestCase {
    /// n1 and n2 list each other, n1 also lists n3 (killed, so it lists no one), n4 has left.
    let nodes: [UpReport.NodeReport] = [
        .init(id: "n1@127.0.0.1:7001", members: ["n1@127.0.0.1:7001", "n3@127.0.0.1:7003", "n2@127.0.0.1:7002"], scriptErrors: 0, state: "running"),
        .init(id: "n2@127.0.0.1:7002", members: ["n2@127.0.0.1:7002", "n1@127.0.0.1:7001"], scriptErrors: 1, state: "running"),
        .init(id: "n3@127.0.0.1:7003", members: [], scriptErrors: 0, state: "killed"),
        .init(id: "n4@127.0.0.1:7004", members: [], scriptErrors: 0, state: "left"),
    ]

    func testEdgesAreMutualOnceOneWayOtherwiseAndNeverToSelf() {
        let graph = MembersGraph(title: "t", reports: nodes)
        XCTAssertEqual(graph.nodes.map(\.name), ["n1", "n2", "n3", "n4"])
        XCTAssertEqual(graph.nodes[0].members, ["n2", "n3"])
        XCTAssertEqual(graph.edges, [.init(from: "n1", to: "n2", mutual: true), .init(from: "n1", to: "n3", mutual: false)])
    }

    func testEveryNodeIsDrawnLabelledAndColouredByItsState() {
        let svg = MembersGraphSVG.render(MembersGraph(title: "t", reports: nodes))
        for (name, state, colour) in [("n1", "running", "#90be6d"), ("n2", "running", "#90be6d"), ("n3", "killed", "#e63946"), ("n4", "left", "#adb5bd")] {
            let group = "<g class=\"node\" data-name=\"\(name)\" data-state=\"\(state)\">"
            XCTAssertEqual(svg.components(separatedBy: group).count, 2, "one node drawing for \(name): \(svg)")
            let drawing = svg.components(separatedBy: group)[1].components(separatedBy: "</g>")[0]
            XCTAssertTrue(drawing.contains("fill=\"\(colour)\""), drawing)
            XCTAssertTrue(drawing.contains("paint-order=\"stroke\">\(name)"), drawing)
            XCTAssertEqual(drawing.contains("> \(state)</tspan></text>"), state != "running", "only nodes that are down show their state: \(drawing)")
        }
        XCTAssertTrue(svg.contains(">t: 4 nodes (1 killed, 1 left, 2 running)</text>"), svg)
    }

    func testAMutualPairIsOnePlainLineAndAOneWayListAnArrow() {
        let svg = MembersGraphSVG.render(MembersGraph(title: "t", reports: nodes))
        let lines = svg.split(separator: "\n").filter { $0.contains("<line ") }
        XCTAssertEqual(lines.count, 2, svg)
        XCTAssertTrue(lines[0].contains("class=\"mutual\" data-from=\"n1\" data-to=\"n2\""), "\(lines[0])")
        XCTAssertFalse(lines[0].contains("marker-end"), "\(lines[0])")
        XCTAssertTrue(lines[1].contains("class=\"one-way\" data-from=\"n1\" data-to=\"n3\""), "\(lines[1])")
        XCTAssertTrue(lines[1].contains("marker-end=\"url(#arrow)\""), "\(lines[1])")
    }

    func testTheSameSnapshotGivesTheSameBytesWhateverTheMemberOrder() {
        let shuffled = nodes.map { node in
            var node = node
            node.members.reverse()
            return node
        }
        let first = MembersGraphSVG.render(MembersGraph(title: "t", reports: nodes))
        XCTAssertEqual(first, MembersGraphSVG.render(MembersGraph(title: "t", reports: nodes)))
        XCTAssertEqual(first, MembersGraphSVG.render(MembersGraph(title: "t", reports: shuffled)))
        XCTAssertEqual(MembersGraphSVG.number(12.345), "12.3")
        XCTAssertEqual(MembersGraphSVG.number(-0.04), "0.0")
        XCTAssertEqual(MembersGraphSVG.number(-1.25), "-1.3")
    }

    /// Names that XML would choke on unescaped, and a single node, still make a well-formed
    /// document with one `<svg>` root and every node drawn.
    func testTheOutputIsWellFormedXMLEvenForAwkwardNames() throws {
        let awkward: [UpReport.NodeReport] = [
            .init(id: "a&b@127.0.0.1:1", members: ["a&b@127.0.0.1:1", "<c>\"'@127.0.0.1:2"], scriptErrors: 0, state: "running"),
            .init(id: "<c>\"'@127.0.0.1:2", members: [], scriptErrors: 0, state: "not started"),
        ]
        for reports in [awkward, Array(awkward.prefix(1)), []] {
            let svg = MembersGraphSVG.render(MembersGraph(title: "x < y & z", reports: reports))
            let document = try XMLDocument(xmlString: svg, options: [])
            let root = try XCTUnwrap(document.rootElement())
            XCTAssertEqual(root.name, "svg")
            let drawn = elements(under: root).filter { $0.name == "g" && attribute("class", of: $0) == "node" }.compactMap { attribute("data-name", of: $0) }
            XCTAssertEqual(drawn, reports.map { String($0.id.split(separator: "@")[0]) }, svg)
        }
    }

    /// Every element below `element`, in document order.
    private func elements(under element: XMLElement) -> [XMLElement] {
        (element.children ?? []).compactMap { $0 as? XMLElement }.flatMap { [$0] + elements(under: $0) }
    }

    /// The attribute `name` of `element` (FoundationXML's `attribute(forName:)` misses them in
    /// a document with a default namespace).
    private func attribute(_ name: String, of element: XMLElement) -> String? {
        element.attributes?.first { $0.name == name }?.stringValue
    }

    /// `--png` renders the DOT output with Graphviz; CI installs it, elsewhere the test skips.
    func testPNGIsRenderedWithGraphvizDot() throws {
        guard MembersGraphFiles.executable(named: "dot") != nil else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                return XCTFail("Graphviz `dot` is not on PATH; scripts/setup installs it (Debian package graphviz)")
            }
            throw XCTSkip("Graphviz `dot` is not on PATH (apt-get install graphviz)")
        }
        let scratch = try TopologyScratch()
        let topology = try scratch.parse(minimalTopology)
        let path = scratch.path("graph.png")
        try MembersGraphFiles.writePNG(dot: MembersGraphDot.render(Array(nodes.prefix(3)), of: topology), to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG signature")
        XCTAssertThrowsError(try MembersGraphFiles.writePNG(dot: "digraph {", to: scratch.path("bad.png"))) { error in
            guard case PictureError.graphvizFailed(let status, _) = error else { return XCTFail("\(error)") }
            XCTAssertNotEqual(status, 0)
        }
    }

    func testWritingIntoAMissingFolderSaysWhichFile() {
        let path = "/nonexistent-\(UUID().uuidString)/graph.svg"
        XCTAssertThrowsError(try MembersGraphFiles.writeSVG(MembersGraph(title: "t", reports: nodes), to: path)) { error in
            guard case PictureError.cannotWrite(let failed, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(failed, path)
            XCTAssertTrue("\(error)".contains("writable"), "\(error)")
        }
    }
}
