import Foundation
import TrellisLua
import TrellisPlacement
import TrellisWire

/// The shipped placement scripts and sample nodes for the placement tests.
enum Fixtures {
    static let placementPlugins = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plugins/placement")

    /// The path of a shipped placement script, e.g. `rendezvous.lua`.
    static func plugin(_ file: String) -> String { placementPlugins.appendingPathComponent(file).path }

    /// Node `i` (from 1) serving `capabilities`, tagged with `tags`.
    static func node(_ i: Int, _ capabilities: [String] = ["game"], tags: [String: String] = [:]) -> PlacementNode {
        PlacementNode(id: PeerID(name: "n\(i)", host: "127.0.0.1", port: 7100 + i), capabilities: capabilities, tags: tags)
    }

    /// Nodes 1...count serving `game`.
    static func nodes(_ count: Int) -> [PlacementNode] { (1...count).map { node($0) } }

    /// A placement policy from Lua source, with a small budget so that runaway scripts stop fast.
    static func script(_ source: String, budget: Int64 = 1_000_000) throws -> LuaPlacement {
        LuaPlacement(script: try PlacementScript(source: source, fileName: "test.lua", limits: ScriptLimits(instructionBudget: budget)))
    }

    /// The error `body` throws, or nil.
    static func error<T>(_ body: () throws -> T) -> Error? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }
}
