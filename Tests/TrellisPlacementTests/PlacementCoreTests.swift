import TrellisLua
import TrellisPlacement
import TrellisWire
import XCTest

/// The placement core: tables per capability, recomputed only when their nodes change, and
/// kept when the policy fails.
final class PlacementCoreTests: XCTestCase {
    func testTablesPerCapability() throws {
        var core = PlacementCore(shardCount: 64)
        let members = [Fixtures.node(1, ["game", "chat"]), Fixtures.node(2, ["game"]), Fixtures.node(3, [])]
        XCTAssertEqual(core.update(members: members), [])
        XCTAssertEqual(core.capabilities, ["chat", "game"])
        XCTAssertEqual(core.table(for: "game"), RendezvousPlacement().table(capability: "game", nodes: Array(members[0...1]), shardCount: 64))
        XCTAssertEqual(Set(try XCTUnwrap(core.table(for: "chat")).owners), [Fixtures.node(1).id])
        XCTAssertEqual(try core.owner(of: "room-7", capability: "chat"), Fixtures.node(1).id)
        XCTAssertThrowsError(try core.owner(of: "x", capability: "mail")) { error in
            XCTAssertEqual(error as? PlacementError, .noNode(capability: "mail"))
            XCTAssertEqual("\(error)", "no node has the capability 'mail'")
        }
    }

    func testRecomputesOnlyWhenACapabilitysNodesChange() {
        var core = PlacementCore(shardCount: 64)
        var members = [Fixtures.node(1), Fixtures.node(2), Fixtures.node(3, ["chat"])]
        _ = core.update(members: members)
        XCTAssertEqual(core.computations, 2)

        _ = core.update(members: members.reversed())  // the same nodes in another order
        _ = core.update(members: members + [Fixtures.node(4, [])])  // a node serving nothing
        XCTAssertEqual(core.computations, 2)
        _ = core.update(members: members + [Fixtures.node(5, ["mail"])])  // a new capability only
        XCTAssertEqual(core.computations, 3)
        XCTAssertNotNil(core.table(for: "mail"))

        members.append(Fixtures.node(6, ["chat"]))  // chat changes, game does not; mail is gone
        _ = core.update(members: members)
        XCTAssertEqual(core.computations, 4)
        XCTAssertNil(core.table(for: "mail"))

        members[1].tags = ["region": "eu"]  // a holder of game changes tags
        _ = core.update(members: members)
        XCTAssertEqual(core.computations, 5)

        members.removeAll { $0.capabilities == ["chat"] }  // chat loses every node
        _ = core.update(members: members)
        XCTAssertEqual(core.computations, 5)
        XCTAssertNil(core.table(for: "chat"))
        XCTAssertEqual(core.capabilities, ["game"])
    }

    func testAFailingScriptKeepsThePreviousTable() throws {
        let source = """
            return { name = "picky", version = 1,
              owner = function(shard, capability, nodes)
                if #nodes > 2 then error("too many nodes") end
                return nodes[shard % #nodes + 1].id
              end }
            """
        var core = PlacementCore(policy: try Fixtures.script(source), shardCount: 16)
        XCTAssertEqual(core.update(members: Fixtures.nodes(2)), [])
        let table = try XCTUnwrap(core.table(for: "game"))

        let failures = core.update(members: Fixtures.nodes(3))
        XCTAssertEqual(failures.map(\.capability), ["game"])
        XCTAssertEqual(failures.first?.error.kind, .runtime)
        XCTAssertEqual(failures.first?.keptPreviousTable, true)
        XCTAssertTrue("\(failures[0])".hasPrefix("placement of 'game': test.lua:3: owner: too many nodes"), "\(failures[0])")
        XCTAssertEqual(core.table(for: "game"), table)

        // The same nodes are not tried again; other nodes are.
        XCTAssertEqual(core.update(members: Fixtures.nodes(3)), [])
        XCTAssertEqual(core.computations, 2)
        XCTAssertEqual(core.update(members: Fixtures.nodes(1)), [])
        XCTAssertEqual(Set(try XCTUnwrap(core.table(for: "game")).owners), [Fixtures.node(1).id])
    }

    func testACapabilityWhosePolicyNeverSucceededHasNoTable() throws {
        let source = #"return { name = "stranger", version = 1, owner = function() return "x@127.0.0.1:1" end }"#
        var core = PlacementCore(policy: try Fixtures.script(source), shardCount: 16)
        let failures = core.update(members: Fixtures.nodes(2))
        XCTAssertEqual(failures.first?.error.kind, .badReturn)
        XCTAssertEqual(failures.first?.keptPreviousTable, false)
        XCTAssertThrowsError(try core.owner(of: "p", capability: "game")) { error in
            XCTAssertEqual(error as? PlacementError, .noTable(capability: "game"))
        }
    }
}
