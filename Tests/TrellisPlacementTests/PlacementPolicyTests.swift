import TrellisLua
import TrellisPlacement
import TrellisWire
import XCTest

/// The shipped policies: the built-in rendezvous against rendezvous.lua, shard movement as the
/// cluster grows, and region preference.
final class PlacementPolicyTests: XCTestCase {
    func testRendezvousLuaAndSwiftGiveTheSameTable() throws {
        let lua = try LuaPlacement(contentsOf: Fixtures.plugin("rendezvous.lua"))
        let sets: [[PlacementNode]] = [
            Fixtures.nodes(1), Fixtures.nodes(5).reversed(), Fixtures.nodes(16),
            [Fixtures.node(10), Fixtures.node(2), Fixtures.node(33)],
            [PlacementNode(id: PeerID(name: "ä-node", host: "::1", port: 1), capabilities: ["game"]), Fixtures.node(1)],
        ]
        for nodes in sets {
            for shards in [1, 7, nodes.count == 16 ? 4096 : 512] {
                let expected = try lua.table(capability: "game", nodes: nodes, shardCount: shards)
                XCTAssertEqual(RendezvousPlacement().table(capability: "game", nodes: nodes, shardCount: shards), expected, "\(nodes.count) nodes, \(shards) shards")
            }
        }
    }

    func testRendezvousSpreadsShardsEvenly() {
        let table = RendezvousPlacement().table(capability: "game", nodes: Fixtures.nodes(8), shardCount: 4096)
        let counts = Dictionary(grouping: table.owners, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(counts.count, 8)
        XCTAssertTrue(counts.values.allSatisfy { (412...612).contains($0) }, "\(counts.values.sorted())")  // 512 ± 100
    }

    func testGrowingMovesOnlyTheNewNodesShareWithRendezvous() throws {
        let lua = try LuaPlacement(contentsOf: Fixtures.plugin("rendezvous.lua"))
        for n in 2...16 {
            let before = RendezvousPlacement().table(capability: "game", nodes: Fixtures.nodes(n), shardCount: 4096)
            let after = RendezvousPlacement().table(capability: "game", nodes: Fixtures.nodes(n + 1), shardCount: 4096)
            let moved = before.movedFraction(to: after)
            XCTAssertLessThanOrEqual(moved, 1 / Double(n + 1) + 0.02, "\(n) → \(n + 1) nodes")
            // Every shard that moved went to the new node.
            let newcomer = Fixtures.node(n + 1).id
            XCTAssertTrue(zip(before.owners, after.owners).allSatisfy { $0 == $1 || $1 == newcomer })
            if n == 8 {
                XCTAssertEqual(try lua.table(capability: "game", nodes: Fixtures.nodes(n + 1), shardCount: 4096), after)
            }
        }
    }

    func testGrowingMovesMostShardsWithModulo() throws {
        let modulo = try LuaPlacement(contentsOf: Fixtures.plugin("modulo.lua"))
        let three = try modulo.table(capability: "game", nodes: Fixtures.nodes(3), shardCount: 4096)
        let four = try modulo.table(capability: "game", nodes: Fixtures.nodes(4), shardCount: 4096)
        XCTAssertEqual(three.movedFraction(to: four), 0.75, accuracy: 0.01)
        for n in 2...16 {
            let before = try modulo.table(capability: "game", nodes: Fixtures.nodes(n), shardCount: 1024)
            let after = try modulo.table(capability: "game", nodes: Fixtures.nodes(n + 1), shardCount: 1024)
            XCTAssertGreaterThan(before.movedFraction(to: after), 0.5, "\(n) → \(n + 1) nodes")
        }
    }

    func testRegionPrefersItsNodesAndFallsBack() throws {
        let region = try LuaPlacement(contentsOf: Fixtures.plugin("region.lua"))
        let eu = [Fixtures.node(2, tags: ["region": "eu"]), Fixtures.node(4, tags: ["region": "eu"])]
        let others = [Fixtures.node(1, tags: ["region": "us"]), Fixtures.node(3)]

        let preferred = try region.table(capability: "game", nodes: eu + others, shardCount: 1024)
        XCTAssertEqual(Set(preferred.owners), Set(eu.map(\.id)))
        XCTAssertEqual(preferred, RendezvousPlacement().table(capability: "game", nodes: eu, shardCount: 1024))

        let fallback = try region.table(capability: "game", nodes: others, shardCount: 1024)
        XCTAssertEqual(fallback, RendezvousPlacement().table(capability: "game", nodes: others, shardCount: 1024))

        // A node joining outside the region moves nothing.
        let joined = try region.table(capability: "game", nodes: eu + others + [Fixtures.node(5, tags: ["region": "ap"])], shardCount: 1024)
        XCTAssertEqual(joined, preferred)
    }

    func testMovedFraction() {
        let a = Fixtures.node(1).id, b = Fixtures.node(2).id
        XCTAssertEqual(ShardTable(owners: [a, a, b, b]).movedFraction(to: ShardTable(owners: [a, b, b, a])), 0.5)
        XCTAssertEqual(ShardTable(owners: [a]).movedFraction(to: ShardTable(owners: [a])), 0)
    }

    /// A table's holders (and their digest) depend on which nodes own shards, not on how many
    /// shards each owns or where.
    func testHoldersAreTheNodesOwningShards() {
        let a = Fixtures.node(1).id, b = Fixtures.node(2).id, c = Fixtures.node(3).id
        let table = ShardTable(owners: [a, b, b, a])
        XCTAssertEqual(table.holders, [a, b])
        XCTAssertEqual(table.holderCount, 2)
        XCTAssertEqual(table.holderDigest, ShardTable(owners: [b, a, a]).holderDigest)
        XCTAssertNotEqual(table.holderDigest, ShardTable(owners: [a, b, c]).holderDigest)
    }
}
