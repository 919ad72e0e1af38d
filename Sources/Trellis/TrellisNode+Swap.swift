import TrellisLua
import TrellisPlacement
import TrellisWire

/// What a hot swap replaced, for reports.
public struct SwapReport: Sendable, Equatable, CustomStringConvertible {
    /// `overlay` or `placement`.
    public var kind: String
    /// The script that ran before, `name` and `version`.
    public var before: String
    /// The script that runs now.
    public var after: String
    /// This node's members right after the swap.
    public var members: [PeerID]

    public var description: String {
        "\(kind) \(before) -> \(after); \(members.count) members"
    }
}

/// Replacing scripts on the running node.
extension TrellisNode {
    /// The placement policy in force: `rendezvous` (built in) or the script's file name.
    public var placementPolicyName: String { placement.policy.name }

    /// The overlay script in force, as `name v<version>`.
    public var overlayVersion: String { "\(core.strategy.fileName) v\(core.strategy.version)" }

    /// Replaces the overlay script without stopping the node: the new script loads in a fresh
    /// VM and is checked against the contract, its `migrate(old_state, old_version, ctx)` (or
    /// `init`) runs under the budget on a copy of the old state, and only then does it take
    /// over. Connections to peers that stay members are kept. On any failure the old script
    /// keeps running with its state and members, and the error says why.
    public func swapOverlay(source: String, fileName: String) throws(NodeError) -> SwapReport {
        let before = overlayVersion
        do {
            let replacement = try OverlayScript(
                source: source, fileName: fileName, limits: config.scriptLimits,
                seed: config.randomSeed ?? StableHash.hash64(Array(config.name.utf8)),
                log: { [logger] line in logger.info("\(line)", metadata: ["source": "lua"]) }
            )
            execute(try core.swap(to: replacement, config: config.overlayConfig, tags: ownMetadata.tags, now: now))
        } catch {
            logger.error("overlay swap refused; the old script keeps running", metadata: ["error": "\(error)"])
            throw .script(error)
        }
        let report = SwapReport(kind: "overlay", before: before, after: overlayVersion, members: core.members)
        logger.notice("overlay swapped", metadata: ["swap": "\(report)"])
        return report
    }

    /// Replaces the placement script: the new policy must compute a table for every capability
    /// the members serve before it takes over; then processes move as for any table change.
    /// On any failure the old policy keeps placing.
    public func swapPlacement(source: String, fileName: String) throws(NodeError) -> SwapReport {
        let before = placement.policy.name
        var replacement: PlacementCore
        do {
            let script = try PlacementScript(source: source, fileName: fileName, limits: config.scriptLimits)
            replacement = PlacementCore(policy: LuaPlacement(script: script), shardCount: config.shardCount)
        } catch {
            throw .script(error)
        }
        if let failure = replacement.update(members: placementMembers()).first {
            logger.error("placement swap refused; the old policy keeps placing", metadata: ["error": "\(failure)"])
            throw .script(failure.error)
        }
        placement = replacement
        updatePlacement()
        return SwapReport(kind: "placement", before: before, after: replacement.policy.name, members: core.members)
    }
}
