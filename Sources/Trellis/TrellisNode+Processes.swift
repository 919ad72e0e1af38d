import Foundation
import TrellisLua
import TrellisPlacement
import TrellisTransport
import TrellisWire

/// Processes: capabilities served here, and calls routed by (capability, id) to the owner.
extension TrellisNode {
    /// Serves `capability` on this node with Swift processes that `behavior` runs, and tells
    /// the other members: from then on this node owns its share of the capability's shards.
    public func serve<Behavior: ProcessBehavior>(_ capability: String, with behavior: Behavior) {
        router.install(SwiftProcessHost(capability: capability, behavior: behavior), for: capability)
        announce(capability)
    }

    /// Serves the capability a Lua actor script names (see `plugins/actors/`), with its
    /// processes in one VM under this node's script limits. Returns the capability.
    @discardableResult
    public func serveActor(source: String, fileName: String) throws(NodeError) -> String {
        let host: LuaActorHost
        do {
            host = try LuaActorHost(
                source: source, fileName: fileName, limits: config.scriptLimits,
                seed: StableHash.hash64(Array("\(config.name)/\(fileName)".utf8)), logger: logger, metrics: metrics
            )
        } catch {
            throw .script(error)
        }
        router.install(host, for: host.capability)
        announce(host.capability)
        return host.capability
    }

    /// Serves the Lua actor script in the file at `path`. Returns its capability.
    @discardableResult
    public func serveActor(contentsOf path: String) throws(NodeError) -> String {
        let source: String
        do {
            source = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .cannotReadScript(path, error.localizedDescription)
        }
        return try serveActor(source: source, fileName: URL(fileURLWithPath: path).lastPathComponent)
    }

    /// Calls process `id` of `capability` on whichever node owns it, activating it there if
    /// needed, and returns its reply.
    ///
    /// Routing reads a cached shard table: no script runs and no actor is entered on the way.
    public nonisolated func call(
        _ capability: String, id: String, _ payload: Value, timeout: Duration = .seconds(5)
    ) async throws(ProcessError) -> Value {
        try await router.call(capability, id: id, payload: payload, timeout: timeout)
    }

    /// Sends `payload` to process `id` of `capability` without waiting for it to be handled.
    public nonisolated func cast(_ capability: String, id: String, _ payload: Value) async throws(ProcessError) {
        try await router.cast(capability, id: id, payload: payload)
    }

    /// The node that owns process `id` of `capability` now, by this node's shard table.
    public nonisolated func owner(of id: String, capability: String) -> PeerID? {
        router.table(for: capability)?.owner(of: id)
    }

    /// The shard table of `capability` as this node routes by it.
    public nonisolated func shardTable(for capability: String) -> ShardTable? {
        router.table(for: capability)
    }

    /// How many processes of `capability` are active on this node.
    public func activeProcesses(of capability: String) async -> Int {
        await router.host(for: capability)?.activeCount() ?? 0
    }

    /// The capabilities this node serves and announces.
    public var capabilities: [String] { ownMetadata.capabilities }

    func announce(_ capability: String) {
        guard !ownMetadata.capabilities.contains(capability) else { return }
        ownMetadata.capabilities.append(capability)
        transport.announce(ownMetadata)
        updatePlacement()
    }

    /// Recomputes the shard tables from the members and what each announced, and hands them
    /// to the router. Policies run only for capabilities whose holders changed. Once a leaving
    /// node has handed off (`placementFrozen`), its tables no longer change.
    @discardableResult
    func updatePlacement() -> Task<Void, Never> {
        guard !stopped, !placementFrozen else { return Task {} }
        let failures = placement.update(members: placementMembers())
        for failure in failures {
            metrics.scriptFailed("placement", failure.error.callback)
            logger.error("placement script failed", metadata: ["error": "\(failure)"])
        }
        var tables: [String: ShardTable] = [:]
        for capability in placement.capabilities {
            tables[capability] = placement.table(for: capability)
        }
        return router.rebalance(to: tables, up: Set(members))
    }

    /// Every member with what it announced: this node, and each member whose metadata is known.
    func placementMembers() -> [PlacementNode] {
        var nodes = leaving ? [] : [PlacementNode(id: id, capabilities: ownMetadata.capabilities, tags: ownMetadata.tags)]
        for member in members where member != id {
            guard let metadata = peerMetadata[member] else { continue }
            nodes.append(PlacementNode(id: member, capabilities: metadata.capabilities, tags: metadata.tags))
        }
        return nodes
    }
}
