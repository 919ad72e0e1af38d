import TrellisWire

/// The members graph of the live nodes at one instant, and the figures that tell whether an
/// overlay is healthy: components, symmetry, in-degrees and how far a flood reaches.
///
/// Nodes are numbered `0..<count`; `edges[i]` are the live nodes that node `i` lists as
/// members (itself excluded).
public struct OverlayGraph: Sendable {
    public let edges: [[Int]]

    public init(edges: [[Int]]) { self.edges = edges }

    public var count: Int { edges.count }

    /// The size of the largest component, edges read in both directions.
    public var largestComponent: Int {
        var undirected = edges.map(Set.init)
        for (node, targets) in edges.enumerated() {
            for target in targets { undirected[target].insert(node) }
        }
        var component = [Int](repeating: -1, count: count)
        var largest = 0
        for start in 0..<count where component[start] < 0 {
            var size = 0
            var frontier = [start]
            component[start] = start
            while let node = frontier.popLast() {
                size += 1
                for next in undirected[node] where component[next] < 0 {
                    component[next] = start
                    frontier.append(next)
                }
            }
            largest = max(largest, size)
        }
        return largest
    }

    /// Edges whose reverse is missing: 0 when every view is symmetric.
    public var asymmetricEdges: Int {
        let sets = edges.map(Set.init)
        return edges.enumerated().reduce(0) { sum, entry in
            sum + entry.element.filter { !sets[$0].contains(entry.offset) }.count
        }
    }

    /// How many nodes list each node.
    public var inDegrees: [Int] {
        var degrees = [Int](repeating: 0, count: count)
        for targets in edges { for target in targets { degrees[target] += 1 } }
        return degrees
    }

    /// The number of nodes a flood from `source` reaches (the source included), each node
    /// forwarding once to all its members.
    public func floodReach(from source: Int) -> Int {
        var reached = [Bool](repeating: false, count: count)
        reached[source] = true
        var total = 1
        var frontier = [source]
        while let node = frontier.popLast() {
            for next in edges[node] where !reached[next] {
                reached[next] = true
                total += 1
                frontier.append(next)
            }
        }
        return total
    }
}

extension SimulatedCluster {
    /// The members graph of the nodes that are live now, in the order of `liveNodes`, and those
    /// nodes' ids. A member that is dead or unknown is not an edge.
    public func liveGraph() -> (ids: [PeerID], graph: OverlayGraph) {
        let live = liveNodes
        let position = Dictionary(uniqueKeysWithValues: live.enumerated().map { ($1, $0) })
        let edges = live.map { id in members(of: id).compactMap { $0 == id ? nil : position[$0] } }
        return (live, OverlayGraph(edges: edges))
    }
}
