import TrellisLua
import TrellisWire

/// Decides which node owns each shard of a capability.
///
/// `PlacementCore` calls a policy only when a capability's nodes change, and routes through
/// the table it returns; a policy never runs on the request path.
public protocol PlacementPolicy {
    /// The policy's name in reports, e.g. `rendezvous` or `region.lua`.
    var name: String { get }

    /// The owner of each shard `0..<shardCount` of `capability`, each one of `nodes`.
    ///
    /// `nodes` holds every member that registered `capability`, sorted by id, never empty;
    /// `shardCount` is positive.
    func table(capability: String, nodes: [PlacementNode], shardCount: Int) throws(ScriptError) -> ShardTable
}

/// A placement policy written in Lua: a `PlacementScript` in its own VM.
///
/// Not `Sendable` (the script owns a VM): it belongs to the node's actor, like the overlay.
public final class LuaPlacement: PlacementPolicy {
    /// The script that decides.
    public let script: PlacementScript

    /// Wraps a loaded placement script.
    public init(script: PlacementScript) {
        self.script = script
    }

    /// Loads the placement script in the file at `path`; lines it logs go to `log`.
    public convenience init(
        contentsOf path: String, limits: ScriptLimits = .init(), seed: UInt64 = 0, log: @escaping (String) -> Void = { _ in }
    ) throws(ScriptError) {
        self.init(script: try PlacementScript(contentsOf: path, limits: limits, seed: seed, log: log))
    }

    /// The script's file name.
    public var name: String { script.fileName }

    public func table(capability: String, nodes: [PlacementNode], shardCount: Int) throws(ScriptError) -> ShardTable {
        let owners = try script.table(capability: capability, nodes: nodes, shardCount: shardCount)
        let byID = Dictionary(nodes.map { ($0.id.description, $0.id) }, uniquingKeysWith: { first, _ in first })
        // The script's table holds only ids of `nodes`: `PlacementScript` checks every owner.
        return ShardTable(owners: owners.map { byID[$0]! })
    }
}
