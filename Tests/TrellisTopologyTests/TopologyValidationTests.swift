import XCTest

@testable import TrellisTopology

/// Every validation error names the right kind, line and key, and says what to do.
final class TopologyValidationTests: XCTestCase {
    private var scratch: TopologyScratch!

    override func setUpWithError() throws { scratch = try TopologyScratch() }

    func testSyntaxErrorKeepsLineAndColumn() throws {
        do {
            _ = try scratch.parse("name = \"t\"\ncount = = 3\n")
            XCTFail("expected a syntax error")
        } catch {
            XCTAssertEqual(error.kind, .syntax)
            XCTAssertEqual(error.line, 2)
            XCTAssertNotNil(error.column)
            XCTAssertTrue(error.description.hasPrefix(scratch.path("t.toml") + ":2:"), "\(error)")
        }
    }

    func testWrongTypeReadsLikeADiagnostic() {
        let text = "name = \"t\"\noverlay = \"overlay.lua\"\n\n[nodes]\ncount = \"5\"\n"
        scratch.assertError(
            text, .wrongType, line: 5, key: "nodes.count",
            "t.toml:5: nodes.count: expected an integer, got a string.", "count = 5")
    }

    func testUnknownKeysSuggestTheClosestKey() {
        scratch.assertError(minimalTopology + "overlay_cofig = 1\n", .unknownKey, line: 6, key: "nodes.overlay_cofig", "allowed here:")
        scratch.assertError("overlay_cofig = 1\n" + minimalTopology, .unknownKey, line: 1, key: "overlay_cofig", "Did you mean `overlay_config`?")
        scratch.assertError(minimalTopology + "base_prot = 7000\n", .unknownKey, line: 6, key: "nodes.base_prot", "Did you mean `base_port`?")
        scratch.assertError(
            minimalTopology + "[join]\nplan = \"seed\"\nsed = \"n1\"\n", .unknownKey, line: 8, key: "join.sed", "Did you mean `seed`?")
        scratch.assertError(
            minimalTopology + "[[expect]]\nkind = \"absent\"\ncount = 3\n", .unknownKey, line: 8, key: "expect[0].count", "allowed here: name, kind, within, after, node")
    }

    func testMissingRequiredKeys() {
        scratch.assertError("overlay = \"overlay.lua\"\n[nodes]\ncount = 1\n", .missingKey, line: nil, key: "name", "Add `name = ")
        scratch.assertError("name = \"t\"\n[nodes]\ncount = 1\n", .missingKey, line: nil, key: "overlay", "Add `overlay = ")
        scratch.assertError("name = \"t\"\noverlay = \"overlay.lua\"\n", .missingKey, line: nil, key: "nodes", "[nodes]")
        scratch.assertError("name = \"t\"\noverlay = \"overlay.lua\"\n[nodes]\nbase_port = 0\n", .missingKey, line: 3, key: "nodes.count", "names")
        scratch.assertError(minimalTopology + "[[schedule]]\nat = \"1s\"\nnode = \"n1\"\n", .missingKey, line: 6, key: "schedule[0].action", "in [schedule[0]]")
    }

    func testWrongTypes() {
        scratch.assertError("name = 5\n", .wrongType, line: 1, key: "name", "expected a string, got an integer")
        scratch.assertError(minimalTopology + "names = \"a\"\n", .wrongType, line: 6, key: "nodes.names", "got a string")
        scratch.assertError(minimalTopology + "tags = { zone = 1 }\n", .wrongType, line: 6, key: "nodes.tags.zone", "expected a string")
        scratch.assertError("nodes = 3\n" + "name = \"t\"\noverlay = \"overlay.lua\"\n", .wrongType, line: 1, key: "nodes", "expected a table")
        scratch.assertError("schedule = 1\n" + minimalTopology, .wrongType, line: 1, key: "schedule", "[[schedule]]")
        scratch.assertError("timeout = 1.5\n" + minimalTopology, .wrongType, line: 1, key: "timeout", "a floating-point number")
    }

    func testOverlayMustExist() {
        scratch.assertError("name = \"t\"\noverlay = \"nope.lua\"\n[nodes]\ncount = 1\n", .missingOverlay, line: 2, key: "overlay", scratch.path("nope.lua"))
        scratch.assertError("name = \"t\"\noverlay = \".\"\n[nodes]\ncount = 1\n", .missingOverlay, line: 2, key: "overlay")
    }

    func testHostMustBeLoopback() throws {
        for host in ["10.0.0.1", "localhost", "127.0.0.256", "127.0.0", "::2", "0127.0.0.1"] {
            scratch.assertError("host = \"\(host)\"\n" + minimalTopology, .notLoopback, line: 1, key: "host", "127.0.0.1")
        }
        for host in ["127.0.0.1", "127.1.2.3", "::1"] {
            XCTAssertEqual(try scratch.parse("host = \"\(host)\"\n" + minimalTopology).host, host)
        }
    }

    func testNodeCountsNamesAndPorts() {
        scratch.assertError("name = \"t\"\noverlay = \"overlay.lua\"\n[nodes]\ncount = 0\n", .invalidValue, line: 4, key: "nodes.count", "1 to 100000")
        scratch.assertError("name = \"t\"\noverlay = \"overlay.lua\"\n[nodes]\ncount = 100001\n", .invalidValue, line: 4, key: "nodes.count")
        scratch.assertError(minimalTopology + "names = [\"a\"]\n", .invalidValue, line: 6, key: "nodes.names", "exactly one")
        let named = "name = \"t\"\noverlay = \"overlay.lua\"\n[nodes]\n"
        scratch.assertError(named + "names = [\"a\", \"b\", \"a\"]\n", .duplicateName, line: 4, key: "nodes.names", "\"a\" is listed twice")
        scratch.assertError(named + "names = []\n", .invalidValue, line: 4, key: "nodes.names")
        scratch.assertError(named + "names = [\"a b\"]\n", .invalidValue, line: 4, key: "nodes.names", "letters, digits")
        scratch.assertError(named + "names = [\"a\", 1]\n", .wrongType, line: 4, key: "nodes.names", "array of strings")
        scratch.assertError(minimalTopology + "base_port = 65534\n", .invalidValue, line: 6, key: "nodes.base_port", "1 to 65533")
        scratch.assertError(minimalTopology + "base_port = -1\n", .invalidValue, line: 6, key: "nodes.base_port")
    }

    func testUnknownNodeNames() {
        scratch.assertError(
            minimalTopology + "[nodes.tags_by_node]\nn7 = { role = \"x\" }\n", .unknownNode, line: 7, key: "nodes.tags_by_node.n7",
            "no node is named \"n7\"", "n1, n2, n3")
        scratch.assertError(minimalTopology + "[join]\nseed = \"n9\"\n", .unknownNode, line: 7, key: "join.seed")
        scratch.assertError(
            minimalTopology + "[join]\nplan = \"explicit\"\n[join.explicit]\nn2 = \"x1\"\n", .unknownNode, line: 9, key: "join.explicit.n2",
            "Did you mean \"n1\"?")
        scratch.assertError(
            minimalTopology + "[join]\nplan = \"explicit\"\n[join.explicit]\nm2 = \"n1\"\n", .unknownNode, line: 9, key: "join.explicit.m2")
        let schedule = "[[schedule]]\nat = \"1s\"\naction = \"kill\"\nnode = \"n1\"\n"
        scratch.assertError(
            minimalTopology + schedule + "[[schedule]]\nat = \"2s\"\naction = \"kill\"\nnodes = [\"n2\", \"nx\"]\n", .unknownNode, line: 13,
            key: "schedule[1].nodes")
        scratch.assertError(
            minimalTopology + "[[expect]]\nkind = \"absent\"\nnode = \"n0\"\n", .unknownNode, line: 8, key: "expect[0].node")
        scratch.assertError(
            minimalTopology + "[[expect]]\nkind = \"members\"\ncount = 2\nnodes = [\"n1\", \"n9\"]\n", .unknownNode, line: 9,
            key: "expect[0].nodes")
    }

    func testJoinRules() {
        scratch.assertError(minimalTopology + "[join]\nplan = \"star\"\n", .invalidValue, line: 7, key: "join.plan", "\"seed\", \"chain\"")
        scratch.assertError(minimalTopology + "[join]\nplan = \"chain\"\nseed = \"n1\"\n", .invalidValue, line: 8, key: "join.seed", "plan = \"seed\"")
        scratch.assertError(minimalTopology + "[join]\nplan = \"explicit\"\n", .missingKey, line: 6, key: "join.explicit", "[join.explicit]")
        scratch.assertError(
            minimalTopology + "[join]\nplan = \"explicit\"\nexplicit = { n2 = \"n2\" }\n", .invalidValue, line: 8, key: "join.explicit.n2", "itself")
        scratch.assertError(
            "timeout = \"1s\"\n" + minimalTopology + "[join]\ndelay = \"1s\"\n", .invalidValue, line: 8, key: "join.delay", "raise `timeout`")
    }

    func testScheduleRules() {
        let entry = { (at: String, action: String, node: String) in "[[schedule]]\nat = \"\(at)\"\naction = \"\(action)\"\nnode = \"\(node)\"\n" }
        scratch.assertError(minimalTopology + entry("1s", "explode", "n1"), .invalidValue, line: 8, key: "schedule[0].action", "\"leave\", \"kill\", \"restart\"")
        scratch.assertError(minimalTopology + entry("30s", "kill", "n1"), .invalidValue, line: 7, key: "schedule[0].at", "timeout")
        scratch.assertError(minimalTopology + entry("1s", "restart", "n1"), .invalidValue, line: 9, key: "schedule[0].node", "only killed or departed nodes")
        // Sorted by time: the leave at 1s comes before the kill at 2s although it is written later.
        scratch.assertError(
            minimalTopology + entry("2s", "kill", "n2") + entry("1s", "leave", "n2"), .invalidValue, line: 9, key: "schedule[0].node",
            "already left")
        scratch.assertError(
            minimalTopology + "[[schedule]]\nat = \"1s\"\naction = \"kill\"\nnode = \"n1\"\nnodes = [\"n2\"]\n", .invalidValue, line: 10,
            key: "schedule[0].nodes", "exactly one")
        scratch.assertError(
            minimalTopology + "[[schedule]]\nat = \"1s\"\naction = \"kill\"\nnodes = [\"n2\", \"n2\"]\n", .duplicateName, line: 9,
            key: "schedule[0].nodes")    }

    func testFaultAndGrowthActions() throws {
        let at = "[[schedule]]\nat = \"1s\"\n"
        scratch.assertError(minimalTopology + at + "action = \"kill\"\nfraction = 1.5\n", .invalidValue, line: 9, key: "schedule[0].fraction", "between 0 and 1")
        scratch.assertError(
            minimalTopology + at + "action = \"kill\"\nfraction = 0.5\nnode = \"n1\"\n", .invalidValue, line: 10, key: "schedule[0].node", "exactly one")
        scratch.assertError(minimalTopology + at + "action = \"heal\"\nnode = \"n1\"\n", .unknownKey, line: 9, key: "schedule[0].node", "takes no other keys")
        scratch.assertError(minimalTopology + at + "action = \"partition\"\n", .missingKey, line: 6, key: "schedule[0].groups")
        scratch.assertError(
            minimalTopology + at + "action = \"partition\"\ngroups = [[\"n1\"], [\"n1\", \"n2\"]]\n", .duplicateName, line: 9,
            key: "schedule[0].groups", "two groups")
        scratch.assertError(
            minimalTopology + at + "action = \"partition\"\ngroups = [[\"n1\", \"nine\"]]\n", .unknownNode, line: 9, key: "schedule[0].groups")
        scratch.assertError(minimalTopology + at + "action = \"add\"\nvia = \"n9\"\ncount = 1\n", .unknownNode, line: 9, key: "schedule[0].via")
        scratch.assertError(
            minimalTopology + at + "action = \"add\"\ncount = 2\n" + "[[schedule]]\nat = \"0.5s\"\naction = \"kill\"\nnode = \"n5\"\n",
            .invalidValue, line: 13, key: "schedule[1].node", "added later")

        let grown = try scratch.parse(
            minimalTopology + at + "action = \"partition\"\ngroups = [[\"n1\"]]\n" + "[[schedule]]\nat = \"2s\"\naction = \"add\"\ncount = 2\nvia = \"n2\"\n"
                + "[[schedule]]\nat = \"3s\"\naction = \"heal\"\n" + "[[schedule]]\nat = \"4s\"\naction = \"kill\"\nnode = \"n5\"\n"
                + "[[report]]\nat = \"5s\"\nbroadcasts = 4\n")
        XCTAssertEqual(grown.nodes.map(\.name), ["n1", "n2", "n3", "n4", "n5"])
        XCTAssertEqual(grown.nodes.filter { $0.addedAtMs == nil }.count, 3)
        XCTAssertEqual(grown.schedule.map(\.action), [.partition, .add, .heal, .kill])
        XCTAssertEqual(grown.schedule[0].groups, [["n1"]])
        XCTAssertEqual(grown.schedule[1].nodes, ["n4", "n5"])
        XCTAssertEqual(grown.schedule[1].via, "n2")
        XCTAssertEqual(grown.reports, [ReportPoint(atMs: 5_000, broadcasts: 4)])
    }

    func testExpectationRules() {
        scratch.assertError(minimalTopology + "[[expect]]\nkind = \"members\"\ncount = 4\n", .invalidValue, line: 8, key: "expect[0].count", "1 to 3")
        scratch.assertError(minimalTopology + "[[expect]]\nkind = \"members\"\n", .missingKey, line: 6, key: "expect[0].count")
        scratch.assertError(minimalTopology + "[[expect]]\nkind = \"converged\"\n", .invalidValue, line: 7, key: "expect[0].kind")
        scratch.assertError(
            minimalTopology + "[[expect]]\nkind = \"members\"\ncount = 3\nafter = \"schedule\"\n", .invalidValue, line: 9,
            key: "expect[0].after", "[[schedule]]")
        scratch.assertError(
            minimalTopology + "[[expect]]\nkind = \"members\"\ncount = 3\nwithin = \"31s\"\n", .invalidValue, line: 9,
            key: "expect[0].within", "timeout")
        scratch.assertError(
            minimalTopology + "[[schedule]]\nat = \"5s\"\naction = \"leave\"\nnode = \"n3\"\n"
                + "[[expect]]\nkind = \"absent\"\nnode = \"n3\"\nwithin = \"4s\"\nafter = \"schedule\"\n", .invalidValue, line: 13,
            key: "expect[0].within", "last scheduled action")
    }

    func testOverlayConfigRefusesDates() {
        scratch.assertError(
            minimalTopology + "[overlay_config]\nplain = 1\nwhen = 2024-01-31\n", .wrongType, line: 8, key: "overlay_config.when", "Quote it")
    }
}
