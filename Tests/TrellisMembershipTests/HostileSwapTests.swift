import Foundation
import TrellisLua
import TrellisMembership
import TrellisWire
import XCTest

/// Hot swap into hostile overlay scripts, on `MembershipCore` without a network.
///
/// A core runs `plugins/overlays/full_mesh.lua` with three members; then every script of
/// `TrellisLuaTests/HostileScripts/` and of `HostileMigrateScripts/` is swapped in over it,
/// each on a fresh core. Every script names what it breaks on its first line,
/// `-- expect: <kind>[|<kind>...] <callback>`:
/// - `load`, `init` or `migrate`: the swap is refused with that error, naming the file, and
///   full_mesh keeps running with the very same members, connections and state;
/// - `swap`: the script takes over and runs, but its state cannot be carried to a next script,
///   so swapping it out is refused and it keeps running;
/// - any other callback: the script takes over (members kept) and fails first in that
///   callback; every failure keeps the members;
/// - `none`: the script takes over and nothing fails.
/// Whatever happened, the core goes on handling join, message and tick events.
final class HostileSwapTests: XCTestCase {
    static let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let corpora = [
        testsDirectory.appendingPathComponent("TrellisLuaTests/HostileScripts"),
        testsDirectory.appendingPathComponent("TrellisMembershipTests/HostileMigrateScripts"),
    ]
    static let fullMeshPath = testsDirectory.deletingLastPathComponent().appendingPathComponent("plugins/overlays/full_mesh.lua").path
    /// Small limits, so that every runaway script is stopped within milliseconds.
    static let limits = ScriptLimits(instructionBudget: 500_000, memoryCap: 8 << 20, maxValueElements: 100_000)
    /// No peer times out during a case: only the scripts change the members.
    static let settings = MembershipSettings(failureTimeout: 600_000)

    let me = PeerID(name: "me", host: "127.0.0.1", port: 7100)
    let peers = (1...3).map { PeerID(name: "p\($0)", host: "127.0.0.1", port: 7100 + $0) }
    let newcomer = PeerID(name: "newcomer", host: "127.0.0.1", port: 7200)

    /// A hostile script and the failure its header announces.
    struct HostileScript {
        let file: String
        let source: String
        let kinds: [String]
        let callback: String
    }

    /// What a refused swap must leave exactly as it was.
    struct Snapshot: Equatable {
        let file: String
        let version: Int64
        let members: [PeerID]
        let connected: Set<PeerID>
        let state: Value
        let scriptErrors: Int

        init(_ core: MembershipCore) throws {
            file = core.strategy.fileName
            version = core.strategy.version
            members = core.members
            connected = core.connected
            state = try core.strategy.exportState()
            scriptErrors = core.scriptErrors
        }
    }

    func hostileScripts() throws -> [HostileScript] {
        var scripts: [HostileScript] = []
        for directory in Self.corpora {
            let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".lua") }.sorted()
            XCTAssertFalse(files.isEmpty, "no scripts in \(directory.path)")
            for file in files {
                let source = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                let fields = source.prefix { $0 != "\n" }.split(separator: " ")
                guard fields.count == 4, fields[0] == "--", fields[1] == "expect:" else {
                    XCTFail("\(file): the first line must be `-- expect: <kind> <callback>`")
                    continue
                }
                scripts.append(HostileScript(
                    file: file, source: source, kinds: fields[2].split(separator: "|").map(String.init), callback: String(fields[3])))
            }
        }
        return scripts
    }

    /// full_mesh with `peers` as members (each said hello) and connected.
    func runningFullMesh() throws -> MembershipCore {
        let script = try OverlayScript(contentsOf: Self.fullMeshPath, limits: Self.limits)
        var (core, _) = MembershipCore.start(selfID: me, strategy: script, config: .nil, settings: Self.settings, now: 0)
        for peer in peers {
            _ = core.handle(.message(.map(["type": "hello", "members": []]), from: peer), now: 1)
            _ = core.handle(.connectionUp(peer), now: 1)
        }
        XCTAssertEqual(core.members, ([me] + peers).sorted())
        XCTAssertEqual(core.connected, Set(peers))
        return core
    }

    /// Loads `source` in a fresh VM and swaps it in, as `TrellisNode.swapOverlay` does.
    func swap(_ core: inout MembershipCore, to source: String, file: String, now: Int64) throws(ScriptError) -> [MembershipDirective] {
        let replacement = try OverlayScript(source: source, fileName: file, limits: Self.limits)
        return try core.swap(to: replacement, config: .nil, now: now)
    }

    func assertNamesTheCause(_ error: ScriptError, of script: HostileScript, callback: String, file: String) {
        XCTAssertTrue(script.kinds.contains("\(error.kind)"), "\(script.file): got \(error.kind): \(error)")
        XCTAssertEqual(error.callback, callback, "\(script.file): \(error)")
        XCTAssertEqual(error.file, file, "\(script.file): \(error)")
        XCTAssertTrue(error.description.hasPrefix(file), "\(script.file): \(error)")
        XCTAssertFalse(error.message.isEmpty, "\(script.file): \(error)")
    }

    func failures(in directives: [MembershipDirective]) -> [ScriptError] {
        directives.compactMap { if case .scriptFailed(let error) = $0 { error } else { nil } }
    }

    /// full_mesh answers each kind of event: a join says hello to the seed, a hello from a new
    /// peer makes it a member, and a tick gossips to a member.
    func assertFullMeshAnswers(_ core: inout MembershipCore, now: Int64, _ context: String) {
        let joined = core.handle(.join(newcomer), now: now)
        XCTAssertTrue(joined.contains { if case .send(let message, newcomer) = $0 { message.value["type"] == "hello" } else { false } },
                      "\(context): join sent no hello: \(joined)")
        let greeted = core.handle(.message(.map(["type": "hello", "members": []]), from: newcomer), now: now + 1)
        XCTAssertTrue(greeted.contains(.memberUp(newcomer)), "\(context): \(greeted)")
        XCTAssertTrue(core.members.contains(newcomer), context)
        let ticked = core.handle(.timer, now: now + 2_000)
        XCTAssertTrue(ticked.contains { if case .send(let message, _) = $0 { message.value["type"] == "welcome" } else { false } },
                      "\(context): tick sent no gossip: \(ticked)")
        XCTAssertEqual(failures(in: joined + greeted + ticked), [], context)
    }

    /// Every hostile script through swap: refused with full_mesh untouched, or contained in the
    /// callback that breaks, with the members kept; the core keeps handling events either way.
    func testEveryHostileScriptIsRefusedOrContainedThroughSwap() throws {
        let scripts = try hostileScripts()
        XCTAssertGreaterThanOrEqual(scripts.count, 50, "the corpora lost scripts")
        let refusedAtSwap = ["load", "init", "migrate"]
        for script in scripts {
            var core = try runningFullMesh()
            let before = try Snapshot(core)
            let swapped: [MembershipDirective]
            do {
                swapped = try swap(&core, to: script.source, file: script.file, now: 10)
            } catch {
                XCTAssertTrue(refusedAtSwap.contains(script.callback), "\(script.file) was refused at swap: \(error)")
                assertNamesTheCause(error, of: script, callback: script.callback, file: script.file)
                XCTAssertEqual(try Snapshot(core), before, "\(script.file): a refused swap leaves full_mesh exactly as it was")
                assertFullMeshAnswers(&core, now: 20, script.file)
                continue
            }
            XCTAssertFalse(refusedAtSwap.contains(script.callback), "\(script.file): the swap should have been refused")
            XCTAssertEqual(core.strategy.fileName, script.file)
            XCTAssertEqual(failures(in: swapped), [], script.file)
            XCTAssertEqual(core.members, before.members, "\(script.file): a swap without new members keeps the old ones")
            XCTAssertEqual(core.connected, before.connected, "\(script.file): the swap dropped a connection")
            try assertContainedAfterSwap(script, in: &core)
        }
    }

    /// Drives a swapped-in script through join, on_message, on_tick and on_down; its first
    /// failure is the announced one, and no failure changes the members. Then swaps full_mesh
    /// back in: that works when the script's state can be carried over, and is otherwise
    /// refused, leaving the script running.
    func assertContainedAfterSwap(_ script: HostileScript, in core: inout MembershipCore) throws {
        let events: [MembershipEvent] = [
            .join(newcomer), .message(.map(["type": "hello"]), from: peers[0]), .timer,
            .connectionDown(peers[1], reason: "connection lost"),
        ]
        var firstFailure: ScriptError?
        for (offset, event) in events.enumerated() {
            let membersBefore = core.members
            let errorsBefore = core.scriptErrors
            let failed = failures(in: core.handle(event, now: 100 + Int64(offset) * 1_100))
            firstFailure = firstFailure ?? failed.first
            if !failed.isEmpty {
                XCTAssertEqual(core.members, membersBefore, "\(script.file): a failed \(event) changed the members")
                XCTAssertEqual(core.scriptErrors, errorsBefore + failed.count, script.file)
            }
        }
        switch script.callback {
        case "none", "swap":
            XCTAssertNil(firstFailure, "\(script.file) should run without failing: \(String(describing: firstFailure))")
        default:
            if let firstFailure {
                assertNamesTheCause(firstFailure, of: script, callback: script.callback, file: script.file)
            } else {
                XCTFail("\(script.file): expected \(script.kinds) in \(script.callback), but every callback succeeded")
            }
        }

        let fullMesh = try String(contentsOfFile: Self.fullMeshPath, encoding: .utf8)
        // full_mesh's migrate starts afresh from a state that is not a table, so any state
        // that can be exported carries over.
        let carriesOver = (try? core.strategy.exportState()) != nil
        let stuck = core.strategy.fileName
        let membersBefore = core.members
        do {
            _ = try swap(&core, to: fullMesh, file: "full_mesh.lua", now: 5_000)
            XCTAssertTrue(carriesOver, "\(script.file): full_mesh took over a state it cannot read")
            XCTAssertNotEqual(script.callback, "swap", "\(script.file): its state should not carry over")
            assertFullMeshAnswers(&core, now: 5_010, "\(script.file), swapped back to full_mesh")
        } catch {
            XCTAssertFalse(carriesOver, "\(script.file): swapping full_mesh back in was refused: \(error)")
            XCTAssertNotEqual(script.callback, "none", "\(script.file) is harmless, yet cannot be swapped out: \(error)")
            if script.callback == "swap" { assertNamesTheCause(error, of: script, callback: "swap", file: script.file) }
            XCTAssertTrue([script.file, "full_mesh.lua"].contains(error.file), "\(script.file): \(error)")
            XCTAssertEqual(core.strategy.fileName, stuck, "\(script.file): a refused swap keeps the script in place")
            XCTAssertEqual(core.members, membersBefore, script.file)
            let answered = core.handle(.join(newcomer), now: 5_010) + core.handle(.timer, now: 7_000)
            XCTAssertTrue(answered.contains(.sendHeartbeat(to: peers[0])), "\(script.file): the core stopped answering: \(answered)")
            XCTAssertEqual(core.members, membersBefore, "\(script.file): the script it kept runs on with its members")
            if script.callback == "swap" { XCTAssertEqual(failures(in: answered), [], script.file) }
        }
    }
}
