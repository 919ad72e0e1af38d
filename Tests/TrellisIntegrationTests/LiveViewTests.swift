import Foundation
import NIOPosix
import TrellisTopology
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `trellis up --live`: the live view's server, and its page in a real headless Chromium.
final class LiveViewTests: XCTestCase {
    static let overlays = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/overlays")

    /// Three full-mesh nodes; n3 is killed at 6 s. The heal at 12 s changes nothing, but keeps
    /// the run (and so the server) going until then, whatever the failure detector does. The
    /// margins leave room for Chromium's first start on a slow machine.
    static let topology = """
        name = "live"
        cluster = "live"
        overlay = "\(overlays.appendingPathComponent("full_mesh.lua").path)"
        timeout = "18s"
        host = "127.0.0.1"

        [nodes]
        count = 3
        base_port = 0

        [join]
        plan = "seed"
        seed = "n1"
        delay = "0ms"

        [[schedule]]
        at = "6s"
        action = "kill"
        node = "n3"

        [[schedule]]
        at = "12s"
        action = "heal"

        [[expect]]
        name = "all converge"
        kind = "members"
        count = 3
        within = "3s"

        [[expect]]
        name = "n3 is gone"
        kind = "absent"
        node = "n3"
        within = "17s"
        after = "schedule"
        """

    func testThePageShowsEveryNodeAndRedrawsWhenOneIsKilled() async throws {
        let chromium = try HeadlessChromium.find()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("live.toml")
        try Self.topology.write(to: file, atomically: true, encoding: .utf8)
        let topology = try Topology.load(path: file.path)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let live = try await LiveViewServer.start(at: LiveViewAddress(port: 0), title: topology.name, group: group)
        let started = ContinuousClock.now
        let run = Task { try await UpRunner(topology: topology, group: group).run(live: live) }
        do {
            try await checkThePage(at: live.url, before: started + .seconds(5.8), afterTheKillBefore: started + .seconds(11.8), with: chromium)
        } catch {
            _ = try? await run.value
            try? await group.shutdownGracefully()
            throw error
        }

        let report = try await run.value
        XCTAssertTrue(report.ok, report.table())
        do {
            let (body, status) = try await get(live.url + "graph.json")
            XCTFail("the server outlived the run: answered \(status): \(body)")
        } catch {}
        try await group.shutdownGracefully()
    }

    /// Every node running until `before` (n3 is killed at 6 s), n3 killed by `afterTheKillBefore`
    /// (the run ends at 12 s), in the table and in the picture alike.
    private func checkThePage(
        at url: String, before: ContinuousClock.Instant, afterTheKillBefore: ContinuousClock.Instant, with chromium: HeadlessChromium
    ) async throws {
        let running = ["n1": "running", "n2": "running", "n3": "running"]
        let first = try await chromium.view(of: url, until: before) { $0.table == running && $0.picture == running }
        XCTAssertEqual(first.table, running, first.dom)
        XCTAssertEqual(first.picture, running, "the SVG in the page draws every node: \(first.dom)")
        XCTAssertTrue(first.dom.contains("3 nodes: 3 running"), first.dom)
        XCTAssertEqual(first.dom.components(separatedBy: "class=\"mutual\"").count - 1, 3, "a full mesh of three: \(first.dom)")

        let killed = ["n1": "running", "n2": "running", "n3": "killed"]
        let second = try await chromium.view(of: url, until: afterTheKillBefore) { $0.table == killed && $0.picture == killed }
        XCTAssertEqual(second.table, killed, second.dom)
        XCTAssertEqual(second.picture, killed, second.dom)
        XCTAssertTrue(second.dom.contains("3 nodes: 1 killed, 2 running"), second.dom)
    }

    func testTheServerAnswersItsPathsAndStopsClosingOpenConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let live = try await LiveViewServer.start(at: LiveViewAddress(port: 0), title: "t", group: group)
        // `NodeReport` has no public initialiser; a report's JSON makes one.
        let nodes = try JSONDecoder().decode([UpReport.NodeReport].self, from: Data(
            #"[{"id": "n1@127.0.0.1:7001", "members": ["n1@127.0.0.1:7001", "n2@127.0.0.1:7002"], "script_errors": 0, "state": "running"}]"#.utf8))
        live.show(nodes, elapsedMs: 42)

        let (page, pageStatus) = try await get(live.url)
        XCTAssertEqual(pageStatus, 200)
        XCTAssertTrue(page.contains("fetch(\"graph.json\"") && page.contains("<title>t: trellis live view</title>"), page)
        let (json, _) = try await get(live.url + "graph.json")
        let graph = try JSONDecoder().decode(MembersGraph.self, from: Data(json.utf8))
        XCTAssertEqual(graph, MembersGraph(title: "t", reports: nodes, elapsedMs: 42))
        XCTAssertEqual(graph.nodes.map(\.members), [[]], "n2 is not in the graph, n1 not its own member")
        let (svg, _) = try await get(live.url + "graph.svg")
        XCTAssertEqual(svg, MembersGraphSVG.render(graph))
        let (_, missing) = try await get(live.url + "nope")
        XCTAssertEqual(missing, 404)
        let (_, posted) = try await get(live.url + "graph.json", method: "POST")
        XCTAssertEqual(posted, 405)

        await live.stop()
        do {
            let (body, status) = try await get(live.url + "graph.json")
            XCTFail("answered \(status) after stop: \(body)")
        } catch {}
        try await group.shutdownGracefully()
    }

    func testAnAddressOutsideLoopbackNeedsTheExplicitFlag() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let live = try await LiveViewServer.start(at: LiveViewAddress(host: "0.0.0.0", port: 0), title: "t", group: group)
            await live.stop()
            XCTFail("served on 0.0.0.0 without allowPublic")
        } catch {
            XCTAssertEqual(error, .notLoopback(host: "0.0.0.0"))
        }
        try await group.shutdownGracefully()
    }

    /// One request on a fresh session (so no connection outlives the test); the body and status.
    private func get(_ url: String, method: String = "GET") async throws -> (String, Int) {
        let session = URLSession(configuration: .ephemeral)
        defer { session.invalidateAndCancel() }
        var request = URLRequest(url: try XCTUnwrap(URL(string: url)), timeoutInterval: 5)
        request.httpMethod = method
        let (data, response) = try await session.data(for: request)
        return (String(decoding: data, as: UTF8.self), (response as? HTTPURLResponse)?.statusCode ?? 0)
    }
}

/// Debian's `chromium` in headless mode, dumping a page's DOM once its scripts have run.
struct HeadlessChromium {
    let executable: String

    /// What a dumped page shows: node name to state, in the node table and in the picture.
    struct View {
        let dom: String
        let table: [String: String]
        let picture: [String: String]
    }

    /// Chromium from PATH. Where it is missing the test is skipped, except under `CI=true`,
    /// where `scripts/setup` should have installed it and the test fails.
    static func find() throws -> HeadlessChromium {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        if let found = folders.map({ "\($0)/chromium" }).first(where: FileManager.default.isExecutableFile) {
            return HeadlessChromium(executable: found)
        }
        let message = "chromium is not on PATH; scripts/setup installs it (Debian package chromium)"
        if ProcessInfo.processInfo.environment["CI"] == "true" { throw Missing(description: message) }
        throw XCTSkip(message)
    }

    /// Fails a test under CI, where the browser should be installed.
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// Dumps `url` again and again until `done` holds for what the page shows, or `deadline`
    /// has passed; the last view either way (at least one dump).
    func view(of url: String, until deadline: ContinuousClock.Instant, _ done: (View) -> Bool) async throws -> View {
        while true {
            let dom = try await dumpDOM(url)
            let view = View(
                dom: dom, table: Self.states(in: dom, #/<tr data-node="([^"]*)" data-state="([^"]*)"/#),
                picture: Self.states(in: dom, #/<g class="node" data-name="([^"]*)" data-state="([^"]*)"/#))
            if done(view) || ContinuousClock.now >= deadline { return view }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The page's DOM after 1.5 s of its virtual time (three polls); `timeout` kills the browser
    /// and its children if it takes over 10 s.
    private func dumpDOM(_ url: String) async throws -> String {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-chromium-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let output = scratch.appendingPathComponent("dom.html")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = [
            "-k", "2", "10", executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--user-data-dir=\(scratch.appendingPathComponent("profile").path)",
            "--virtual-time-budget=1500", "--dump-dom", url,
        ]
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        XCTAssertEqual(status, 0, "chromium --dump-dom \(url) exited with \(status)")
        return try String(contentsOf: output, encoding: .utf8)
    }

    private static func states(in dom: String, _ pattern: Regex<(Substring, Substring, Substring)>) -> [String: String] {
        Dictionary(dom.matches(of: pattern).map { (String($0.1), String($0.2)) }, uniquingKeysWith: { first, _ in first })
    }
}
