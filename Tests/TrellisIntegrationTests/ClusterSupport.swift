import NIOCore
import Trellis
import XCTest

/// Starts `count` nodes named `prefix1`, `prefix2`, ... running full_mesh.lua, each joining
/// through the first, and waits (at most 10 s) until every one sees them all.
func startFullMesh(_ count: Int, named prefix: String, group: any EventLoopGroup) async throws -> [TrellisNode] {
    var nodes: [TrellisNode] = []
    for index in 1...count {
        let configuration = try NodeConfiguration(
            name: "\(prefix)\(index)", clusterName: prefix, cookie: "c", overlayPath: ProcessTests.fullMesh)
        let node = try await TrellisNode.start(configuration, group: group)
        if let seed = nodes.first { await node.join(seed.id) }
        nodes.append(node)
    }
    for _ in 0..<500 {
        var converged = true
        for node in nodes where await node.members.count != count { converged = false }
        if converged { return nodes }
        try await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("the \(prefix) nodes did not form a full mesh in 10 s")
    return nodes
}
