import TrellisLua
import TrellisMembership
import TrellisWire
import XCTest

/// `MembershipCore.swap`: the transaction, without a network.
final class HotSwapCoreTests: XCTestCase {
    let me = PeerID(name: "me", host: "127.0.0.1", port: 1)

    /// An overlay whose members are its state's `members` array; `join` adds one.
    static func overlay(version: Int, migrate: String? = nil) -> String {
        """
        return {
          name = "list", version = \(version),
          init = function(ctx) return { members = { ctx.self } }, { ctx.self } end,
          join = function(s, peer) table.insert(s.members, peer) return s, s.members end,
          leave = function(s) return s end, on_message = function(s) return s end, on_tick = function(s) return s end,
          \(migrate.map { "migrate = \($0)," } ?? "")
        }
        """
    }

    func start() throws -> MembershipCore {
        let script = try OverlayScript(source: Self.overlay(version: 1), fileName: "list.lua")
        var (core, _) = MembershipCore.start(selfID: me, strategy: script, config: .nil, now: 0)
        for name in ["a", "b"] { _ = core.handle(.join(PeerID(name: name, host: "127.0.0.1", port: 9)), now: 1) }
        XCTAssertEqual(core.members.count, 3)
        return core
    }

    func testMigrateKeepsMembersAndTheirConnections() throws {
        var core = try start()
        let replacement = try OverlayScript(
            source: Self.overlay(version: 2, migrate: "function(old, v, ctx) old.from = v return old, old.members end"),
            fileName: "list.lua")
        let directives = try core.swap(to: replacement, config: .nil, now: 5)
        XCTAssertEqual(directives.count, 0, "the same members: nothing to connect or drop, got \(directives)")
        XCTAssertEqual(core.strategy.version, 2)
        XCTAssertEqual(try replacement.exportState()["from"], .int(1), "migrate saw the old version")
        XCTAssertEqual(core.members.count, 3)
    }

    func testAFailedSwapLeavesTheOldScriptStateAndMembers() throws {
        var core = try start()
        for migrate in ["function(old) error('no') end", "function(old) while true do end end", "function(old) return old, { 42 } end"] {
            let replacement = try OverlayScript(source: Self.overlay(version: 2, migrate: migrate), fileName: "bad.lua", limits: .init(instructionBudget: 100_000))
            XCTAssertThrowsError(try core.swap(to: replacement, config: .nil, now: 5), migrate)
            XCTAssertEqual(core.strategy.version, 1, migrate)
            XCTAssertEqual(core.members.count, 3, migrate)
        }
        _ = core.handle(.join(PeerID(name: "c", host: "127.0.0.1", port: 9)), now: 6)
        XCTAssertEqual(core.members.count, 4, "the old script still runs with its state")
    }

    func testWithoutMigrateTheNewScriptStartsFromInit() throws {
        var core = try start()
        let replacement = try OverlayScript(source: Self.overlay(version: 3), fileName: "list.lua")
        let directives = try core.swap(to: replacement, config: .nil, now: 5)
        XCTAssertEqual(core.members, [me], "init gives only this node")
        XCTAssertEqual(directives.filter { if case .disconnect = $0 { return true } else { return false } }.count, 2)
    }
}
