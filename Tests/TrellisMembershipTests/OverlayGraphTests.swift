import TrellisSimulator
import XCTest

/// The figures `[[report]]` prints, on graphs small enough to check by hand.
final class OverlayGraphTests: XCTestCase {
    func testComponentsSymmetryDegreesAndFloods() {
        // 0 <-> 1 <-> 2, 3 -> 0 (one-way), 4 alone.
        let graph = OverlayGraph(edges: [[1], [0, 2], [1], [0], []])
        XCTAssertEqual(graph.largestComponent, 4)
        XCTAssertEqual(graph.asymmetricEdges, 1)
        XCTAssertEqual(graph.inDegrees, [2, 2, 1, 0, 0])
        XCTAssertEqual(graph.floodReach(from: 3), 4, "a flood follows the direction of the edges")
        XCTAssertEqual(graph.floodReach(from: 0), 3)
        XCTAssertEqual(graph.floodReach(from: 4), 1)
    }

    func testAnEmptyGraph() {
        let graph = OverlayGraph(edges: [])
        XCTAssertEqual(graph.largestComponent, 0)
        XCTAssertEqual(graph.asymmetricEdges, 0)
    }
}
