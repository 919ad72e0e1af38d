import TrellisLua
import TrellisPlacement
import TrellisWire
import XCTest

/// The placement script host: the contract's shape, what scripts see, and hostile scripts.
final class PlacementScriptTests: XCTestCase {
    func testShippedPluginsGiveValidTables() throws {
        let nodes = [Fixtures.node(3, tags: ["region": "eu"]), Fixtures.node(1, tags: ["region": "us"]), Fixtures.node(2)]
        let ids = Set(nodes.map(\.id.description))
        for file in ["modulo.lua", "rendezvous.lua", "region.lua"] {
            let script = try PlacementScript(contentsOf: Fixtures.plugin(file))
            XCTAssertEqual(script.name, String(file.dropLast(4)))
            let owners = try script.table(capability: "game", nodes: nodes, shardCount: 256)
            XCTAssertEqual(owners.count, 256, file)
            XCTAssertTrue(owners.allSatisfy(ids.contains), file)
        }
    }

    func testModuloWalksTheNodesSortedByID() throws {
        let script = try PlacementScript(contentsOf: Fixtures.plugin("modulo.lua"))
        let owners = try script.table(capability: "game", nodes: [Fixtures.node(2), Fixtures.node(3), Fixtures.node(1)], shardCount: 5)
        XCTAssertEqual(owners, [1, 2, 3, 1, 2].map { Fixtures.node($0).id.description })
    }

    func testOwnerSeesShardCapabilityAndNodes() throws {
        let source = """
            return { name = "probe", version = 1,
              owner = function(shard, capability, nodes)
                local n = nodes[shard % #nodes + 1]
                assert(capability == "chat" and n.capabilities[1] == "chat" and n.tags.zone == "a")
                return n.id
              end }
            """
        let nodes = [Fixtures.node(1, ["chat"], tags: ["zone": "a"]), Fixtures.node(2, ["chat"], tags: ["zone": "a"])]
        let owners = try PlacementScript(source: source, fileName: "probe.lua").table(capability: "chat", nodes: nodes, shardCount: 4)
        XCTAssertEqual(owners, [1, 2, 1, 2].map { Fixtures.node($0).id.description })
    }

    func testEveryShardGetsFreshNodes() throws {
        // A script that damages its nodes table cannot change what the next shard sees.
        let source = #"return { name = "d", version = 1, owner = function(s, c, nodes) local n = table.remove(nodes, 1); return n.id end }"#
        let owners = try PlacementScript(source: source, fileName: "d.lua").table(capability: "game", nodes: Fixtures.nodes(3), shardCount: 3)
        XCTAssertEqual(Set(owners), [Fixtures.node(1).id.description])
    }

    func testAssignWinsOverOwner() throws {
        let source = """
            return { name = "both", version = 1,
              owner = function() error("owner must not run") end,
              assign = function(capability, nodes, count)
                local owners = {}
                for i = 1, count do owners[i] = nodes[#nodes].id end
                return owners
              end }
            """
        let owners = try PlacementScript(source: source, fileName: "both.lua").table(capability: "game", nodes: Fixtures.nodes(3), shardCount: 8)
        XCTAssertEqual(owners, Array(repeating: Fixtures.node(3).id.description, count: 8))
    }

    func testInvalidTablesAreRefusedWithEveryProblem() {
        let cases = [
            #"return { name = "x", version = 1 }"#: ["`owner` or `assign`"],
            #"return { name = 3, version = 1.5, owner = function() end }"#: ["`name`", "`version`"],
            #"return { name = "x", version = 1, owner = "first", assign = function() end }"#: ["`owner` must be a function"],
        ]
        for (source, problems) in cases {
            guard let error = Fixtures.error({ try PlacementScript(source: source, fileName: "bad.lua") }) as? ScriptError else {
                XCTFail("accepted \(source)")
                continue
            }
            XCTAssertEqual(error.kind, .invalidScript)
            XCTAssertNotNil(error.hint)
            for problem in problems { XCTAssertTrue(error.message.contains(problem), "\(problem) missing from \(error.message)") }
        }
    }

    func testOwnerReturningANonMemberNamesTheShardAndTheValue() throws {
        let source = """
            return { name = "stranger", version = 1,
              owner = function(shard, capability, nodes)
                if shard == 7 then return "n9@127.0.0.1:7109" end
                return nodes[1].id
              end }
            """
        let error = try XCTUnwrap(Fixtures.error { try Fixtures.script(source).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 16) } as? ScriptError)
        XCTAssertEqual(error.kind, .badReturn)
        XCTAssertEqual(error.callback, "owner")
        XCTAssertEqual(error.line, 2)
        XCTAssertTrue(error.message.contains("shard 7") && error.message.contains("n9@127.0.0.1:7109"), error.message)
        XCTAssertTrue(error.message.contains("not the id of one of the 2 nodes"), error.message)
    }

    func testOwnerReturningTheWrongType() throws {
        for (returned, described) in [("shard", "the number 0"), ("nodes[1]", "a table"), ("nil", "nil")] {
            let source = "return { name = \"t\", version = 1, owner = function(shard, c, nodes) return \(returned) end }"
            let error = try XCTUnwrap(Fixtures.error { try Fixtures.script(source).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 4) } as? ScriptError)
            XCTAssertEqual(error.kind, .badReturn)
            XCTAssertTrue(error.message.contains("shard 0 is \(described)") && error.message.contains("not a peer id string"), error.message)
        }
    }

    func testAssignReturningTheWrongShape() throws {
        let cases = [
            "return { nodes[1].id, nodes[2].id }": "returned an array of 2 owners for 4 shards",
            "return nodes[1].id": "returned the string",
            "return { nodes[1].id, nodes[1].id, 42, nodes[1].id }": "owners[3] of shard 2 is the number 42",
            "return { nodes[1].id, nodes[1].id, nodes[1].id, 'x@h:1' }": "owners[4] of shard 3 is the string \"x@h:1\"",
        ]
        for (body, message) in cases {
            let source = "return { name = \"a\", version = 1, assign = function(capability, nodes, count) \(body) end }"
            let error = try XCTUnwrap(Fixtures.error { try Fixtures.script(source).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 4) } as? ScriptError)
            XCTAssertEqual(error.kind, .badReturn, body)
            XCTAssertEqual(error.callback, "assign")
            XCTAssertTrue(error.message.contains(message), "\(message) missing from \(error.message)")
        }
    }

    func testEachShardHasItsOwnBudgetAndCannotEscapeIt() throws {
        // 100 shards of 5,000 instructions fit no single budget of 100,000, but each shard's does.
        let busy = """
            return { name = "busy", version = 1,
              owner = function(shard, c, nodes) local x = 0; for i = 1, 1000 do x = x + i end; return nodes[1].id end }
            """
        XCTAssertEqual(try Fixtures.script(busy, budget: 100_000).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 100).shardCount, 100)

        let looping = """
            return { name = "loop", version = 1,
              owner = function(shard, c, nodes)
                if shard == 3 then
                  while true do pcall(function() while true do end end) end
                end
                return nodes[1].id
              end }
            """
        let start = ContinuousClock.now
        let error = try XCTUnwrap(Fixtures.error { try Fixtures.script(looping).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 64) } as? ScriptError)
        XCTAssertEqual(error.kind, .budgetExceeded)
        XCTAssertEqual(error.callback, "owner")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))

        let assigning = #"return { name = "a", version = 1, assign = function() while true do end end }"#
        let assignError = try XCTUnwrap(Fixtures.error { try Fixtures.script(assigning).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 64) } as? ScriptError)
        XCTAssertEqual(assignError.kind, .budgetExceeded)
        XCTAssertEqual(assignError.callback, "assign")
    }

    func testARaisingScriptIsReportedWithItsLine() throws {
        let source = """
            return { name = "raise", version = 1,
              owner = function(shard, capability, nodes)
                return nodes[1].tags.region.name
              end }
            """
        let error = try XCTUnwrap(Fixtures.error { try Fixtures.script(source).table(capability: "game", nodes: Fixtures.nodes(2), shardCount: 4) } as? ScriptError)
        XCTAssertEqual(error.kind, .runtime)
        XCTAssertEqual(error.callback, "owner")
        XCTAssertEqual(error.line, 3)
        XCTAssertTrue(error.description.hasPrefix("test.lua:3: owner: attempt to index a nil value"), error.description)
    }
}

/// `trellis check` on placement scripts: it computes one table on sample nodes.
final class PlacementCheckTests: XCTestCase {
    func testShippedPluginsPassTheCheck() throws {
        for file in ["modulo.lua", "rendezvous.lua", "region.lua"] {
            let source = try String(contentsOfFile: Fixtures.plugin(file), encoding: .utf8)
            let name = file.dropLast(4), callback = file == "region.lua" ? "assign" : "owner"
            XCTAssertEqual(try ScriptChecker.check(source: source, fileName: file).get(), "placement policy '\(name)' version 1: \(callback)")
        }
    }

    func testTheCheckRunsThePolicy() {
        let untagged = #"return { name = "zone", version = 1, owner = function(s, c, nodes) return nodes[s % #nodes + 1].tags.zone:upper() end }"#
        guard case .failure(let error) = ScriptChecker.check(source: untagged, fileName: "zone.lua") else { return XCTFail() }
        XCTAssertEqual(error.kind, .runtime)
        XCTAssertEqual(error.callback, "owner")

        let stranger = #"return { name = "s", version = 1, assign = function(c, nodes, count) return { "x@127.0.0.1:1" } end }"#
        guard case .failure(let bad) = ScriptChecker.check(source: stranger, fileName: "s.lua") else { return XCTFail() }
        XCTAssertEqual(bad.kind, .badReturn)
        XCTAssertTrue(bad.message.contains("for 64 shards"), bad.message)
    }
}
