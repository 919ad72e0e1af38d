import Foundation
import TrellisLua
import TrellisSimulator
import TrellisWire

/// The overlay's figures at one instant of a simulation: what `[[report]]` asks for.
public struct OverlayReport: Codable, Sendable, Equatable {
    /// Minimum, mean and maximum of a figure over the live nodes.
    public struct Spread: Codable, Sendable, Equatable {
        public var min: Int
        public var mean: Double
        public var max: Int

        init(_ values: [Int]) {
            min = values.min() ?? 0
            max = values.max() ?? 0
            mean = values.isEmpty ? 0 : Double(values.reduce(0, +)) / Double(values.count)
        }

        var text: String { "\(min)-\(max) (mean \(String(format: "%.1f", mean)))" }
    }

    /// How many live nodes each in-degree has, as `[degree, nodes]` pairs in degree order.
    public struct Degrees: Codable, Sendable, Equatable {
        public var spread: Spread
        public var histogram: [[Int]]
    }

    /// The fraction of live nodes that floods from random live nodes reached.
    public struct Reliability: Codable, Sendable, Equatable {
        public var mean: Double
        public var min: Double
        public var floods: Int
    }

    public var atMs: Int
    /// Live nodes.
    public var live: Int
    /// Nodes in the largest connected component of the live members graph.
    public var largestComponent: Int
    /// Member edges without their reverse (0: every view is symmetric).
    public var asymmetricEdges: Int
    public var inDegree: Degrees
    /// Membership messages each live node has sent since the start.
    public var messagesPerNode: Spread
    public var broadcastReliability: Reliability

    enum CodingKeys: String, CodingKey {
        case live
        case atMs = "at_ms"
        case largestComponent = "largest_component"
        case asymmetricEdges = "asymmetric_edges"
        case inDegree = "in_degree"
        case messagesPerNode = "messages_per_node"
        case broadcastReliability = "broadcast_reliability"
    }

    /// Measures `cluster` now, flooding from `floods` live nodes picked with `random`.
    static func measure(
        _ cluster: SimulatedCluster, at atMs: Int, floods: Int, random: inout SeededRandom
    ) -> OverlayReport {
        let (ids, graph) = cluster.liveGraph()
        let degrees = graph.inDegrees
        var histogram: [Int: Int] = [:]
        for degree in degrees { histogram[degree, default: 0] += 1 }
        let reaches = ids.isEmpty ? [] : (0..<floods).map { _ in
            Double(graph.floodReach(from: random.below(ids.count))) / Double(ids.count)
        }
        return OverlayReport(
            atMs: atMs, live: ids.count, largestComponent: graph.largestComponent, asymmetricEdges: graph.asymmetricEdges,
            inDegree: Degrees(spread: Spread(degrees), histogram: histogram.keys.sorted().map { [$0, histogram[$0]!] }),
            messagesPerNode: Spread(ids.map(cluster.messagesSent(by:))),
            broadcastReliability: Reliability(
                mean: reaches.isEmpty ? 0 : reaches.reduce(0, +) / Double(reaches.count), min: reaches.min() ?? 0,
                floods: reaches.count)
        )
    }

    /// One line for people.
    var line: String {
        let reliability = String(format: "%.2f %% (min %.2f %%, %d floods)", broadcastReliability.mean * 100, broadcastReliability.min * 100, broadcastReliability.floods)
        return "at \(atMs) ms: \(live) live, largest component \(largestComponent), "
            + (asymmetricEdges == 0 ? "symmetric" : "\(asymmetricEdges) one-way edges")
            + ", in-degree \(inDegree.spread.text), messages sent/node \(messagesPerNode.text), broadcast reliability \(reliability)"
    }
}
