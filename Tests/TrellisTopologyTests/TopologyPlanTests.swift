import TrellisWire
import XCTest

@testable import TrellisTopology

/// Durations, join plans, node specs and the overlay config conversion.
final class TopologyPlanTests: XCTestCase {
    private var scratch: TopologyScratch!

    override func setUpWithError() throws { scratch = try TopologyScratch() }

    func testDurations() {
        let valid = ["0ms": 0, "250ms": 250, "5s": 5000, "1.5s": 1500, "0.25s": 250, "2m": 120_000, "0.5m": 30_000, "1440m": 86_400_000]
        for (text, ms) in valid { XCTAssertEqual(TopologyDuration.milliseconds(text), ms, text) }
        for text in ["", "5", "s", "-1s", "5 s", "1.5ms", "1.2345s", "5h", "1.s", ".5s", "1441m", "99999999999999999999s"] {
            XCTAssertNil(TopologyDuration.milliseconds(text), text)
        }
    }

    func testDurationsInTheFile() throws {
        XCTAssertEqual(try scratch.parse("timeout = 1500\n" + minimalTopology).timeoutMs, 1500)
        XCTAssertEqual(try scratch.parse("timeout = \"2m\"\n" + minimalTopology).timeoutMs, 120_000)
        XCTAssertEqual(try scratch.parse(minimalTopology).timeoutMs, Topology.defaultTimeoutMs)
        scratch.assertError("timeout = \"soon\"\n" + minimalTopology, .invalidValue, line: 1, key: "timeout", "`soon` is not a duration", "\"250ms\"")
        scratch.assertError("timeout = -5\n" + minimalTopology, .invalidValue, line: 1, key: "timeout", "negative")
        scratch.assertError("timeout = 0\n" + minimalTopology, .invalidValue, line: 1, key: "timeout", "positive")
    }

    private func join(_ section: String, nodes: String = "count = 4") throws -> JoinPlan {
        try scratch.parse("name = \"t\"\noverlay = \"overlay.lua\"\n[nodes]\n\(nodes)\n\(section)").join
    }

    private func pairs(_ plan: JoinPlan) -> [String] { plan.steps.map { "\($0.joiner)>\($0.target)" } }

    func testJoinPlansResolveToSteps() throws {
        let byDefault = try join("")
        XCTAssertEqual(byDefault.strategy, .seed("n1"))
        XCTAssertEqual(pairs(byDefault), ["n2>n1", "n3>n1", "n4>n1"])
        XCTAssertEqual(byDefault.delayMs, 0)

        let seeded = try join("[join]\nseed = \"n3\"\ndelay = \"100ms\"\n")
        XCTAssertEqual(seeded.strategy, .seed("n3"))
        XCTAssertEqual(pairs(seeded), ["n1>n3", "n2>n3", "n4>n3"])
        XCTAssertEqual(seeded.delayMs, 100)

        let chain = try join("[join]\nplan = \"chain\"\n", nodes: "names = [\"c\", \"a\", \"b\"]")
        XCTAssertEqual(chain.strategy, .chain)
        XCTAssertEqual(pairs(chain), ["a>c", "b>a"])

        let explicit = try join("[join]\nplan = \"explicit\"\n[join.explicit]\nn4 = \"n2\"\nn2 = \"n1\"\nn3 = \"n2\"\n")
        XCTAssertEqual(explicit.strategy, .explicit)
        XCTAssertEqual(pairs(explicit), ["n2>n1", "n3>n2", "n4>n2"])

        let none = try join("[join]\nplan = \"none\"\n")
        XCTAssertEqual(none, JoinPlan(strategy: .none, steps: [], delayMs: 0))

        XCTAssertEqual(pairs(try join("", nodes: "count = 1")), [])
    }

    func testNodeSpecs() throws {
        let topology = try scratch.parse("""
            name = "t"
            cluster = "c"
            cookie = "secret"
            overlay = "\(scratch.path("overlay.lua"))"

            [nodes]
            names = ["a", "b", "c"]
            base_port = 7000
            tags = { zone = "z1", rack = "r1" }

            [nodes.tags_by_node]
            b = { zone = "z2", role = "seed" }
            "c" = {}
            """)
        XCTAssertEqual(topology.cluster, "c")
        XCTAssertEqual(topology.cookie, "secret")
        XCTAssertEqual(topology.overlayPath, scratch.path("overlay.lua"))
        XCTAssertEqual(topology.nodes, [
            NodeSpec(name: "a", port: 7000, tags: ["zone": "z1", "rack": "r1"]),
            NodeSpec(name: "b", port: 7001, tags: ["zone": "z2", "rack": "r1", "role": "seed"]),
            NodeSpec(name: "c", port: 7002, tags: ["zone": "z1", "rack": "r1"]),
        ])
    }

    func testOverlayPathIsResolvedAgainstTheFilesFolder() throws {
        try scratch.write("-- stub\n", to: "plugins/o.lua")
        let text = "name = \"t\"\noverlay = \"../plugins/./o.lua\"\n[nodes]\ncount = 1\n"
        let topology = try Topology.parse(text, path: scratch.path("topologies/t.toml"))
        XCTAssertEqual(topology.overlayPath, scratch.path("plugins/o.lua"))
    }

    func testOverlayConfigBecomesAValueMap() throws {
        let topology = try scratch.parse(minimalTopology + """
            [overlay_config]
            tick = 500
            ratio = 0.25
            enabled = true
            label = "mesh"
            members = ["n1", "n2"]
            matrix = [[1, 2], [3]]
            mixed = [1, "two", false]
            limits = { fanout = 3, nested = { deep = -1.5 } }

            [overlay_config.extra]
            on = false
            """)
        let expected: Value = .map([
            "tick": .int(500),
            "ratio": .float(0.25),
            "enabled": .bool(true),
            "label": .string("mesh"),
            "members": .array([.string("n1"), .string("n2")]),
            "matrix": .array([.array([.int(1), .int(2)]), .array([.int(3)])]),
            "mixed": .array([.int(1), .string("two"), .bool(false)]),
            "limits": .map(["fanout": .int(3), "nested": .map(["deep": .float(-1.5)])]),
            "extra": .map(["on": .bool(false)]),
        ])
        XCTAssertEqual(topology.overlayConfig, expected)
        XCTAssertEqual(try scratch.parse(minimalTopology).overlayConfig, .map([:]))
    }

    func testSourceMapFindsDottedQuotedAndArrayKeys() {
        let map = TopologySourceMap("""
            a = 1 # comment
            nodes.count = "x"
            text = \"\"\"
            fake = 1
            \"\"\"
            ["quoted key"]
            "inner".b = 2
            [[schedule]]
            at = 1
            [[schedule]]
            at = 2
            [schedule.extra]
            x = 3
            """)
        func line(_ components: TopologyKeyPath.Component...) -> Int? { map.line(of: TopologyKeyPath(components: components)) }
        XCTAssertEqual(line(.key("a")), 1)
        XCTAssertEqual(line(.key("nodes"), .key("count")), 2)
        XCTAssertNil(line(.key("fake")))
        XCTAssertEqual(line(.key("quoted key")), 6)
        XCTAssertEqual(line(.key("quoted key"), .key("inner"), .key("b")), 7)
        XCTAssertEqual(line(.key("schedule"), .index(0), .key("at")), 9)
        XCTAssertEqual(line(.key("schedule"), .index(1), .key("at")), 11)
        XCTAssertEqual(line(.key("schedule"), .index(1), .key("extra"), .key("x")), 13)
        XCTAssertEqual(line(.key("schedule"), .index(1), .key("missing")), 10)
        XCTAssertNil(line(.key("nowhere")))
    }
}
