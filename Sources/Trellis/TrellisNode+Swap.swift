import TrellisLua
import TrellisPlacement
import TrellisTransport
import TrellisWire

extension ChannelName {
    /// Scripts pushed by a cluster-wide swap. Only authenticated members (same cookie) can
    /// open it, as for every channel.
    public static let admin: ChannelName = "admin"
}

/// One node's answer to a cluster-wide swap.
public struct NodeSwapResult: Sendable, Equatable {
    public var node: PeerID
    /// The report, or why the node refused (it keeps its old script).
    public var outcome: Result<SwapReport, SwapRefusal>
}

/// Why a node refused a swap.
public struct SwapRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

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
            let metered = MeteredOverlay(replacement, metrics: metrics)
            execute(try core.swap(to: metered, config: config.overlayConfig, tags: ownMetadata.tags, now: now))
        } catch {
            metrics.swapped("overlay", ok: false)
            logger.error("overlay swap refused; the old script keeps running", metadata: ["error": "\(error)"])
            throw .script(error)
        }
        metrics.swapped("overlay", ok: true)
        let report = SwapReport(kind: "overlay", before: before, after: overlayVersion, members: core.members)
        logger.notice("overlay swapped", metadata: ["swap": "\(report)"])
        return report
    }

    /// Swaps `kind` (`overlay`, `placement` or `actor`) here, then pushes the same script over
    /// the `admin` channel to every node it can reach through the members graph, and collects
    /// each node's answer, this node first. Nodes that refuse keep their old script and say why.
    ///
    /// Each node reports its members from before and after its swap, and the push goes on to
    /// those not reached yet: swapping to a partial-view overlay shrinks every node's member
    /// list, but together the lists still span the cluster.
    public func rollOut(kind: String, source: String, fileName: String, timeout: Duration = .seconds(10)) async -> [NodeSwapResult] {
        let before = members
        let own = NodeSwapResult(node: id, outcome: await swap(kind, source: source, fileName: fileName))
        let request = Value.map(["swap": .string(kind), "file": .string(fileName), "source": .string(source)])
        let replies = await pushThroughCluster(request, startingWith: before + members, timeout: timeout)
        return [own] + replies.map { node, reply in
            switch reply {
            case .success(let value): NodeSwapResult(node: node, outcome: Self.outcome(of: value))
            case .failure(let error): NodeSwapResult(node: node, outcome: .failure(SwapRefusal(description: "\(error)")))
            }
        }
    }

    /// Sends `request` on the `admin` channel to `peers`, then to every peer their replies list
    /// under `known`, and so on, each node once; the replies in the order sent.
    func pushThroughCluster(
        _ request: Value, startingWith peers: [PeerID], timeout: Duration
    ) async -> [(node: PeerID, reply: Result<Value, TransportError>)] {
        var reached: Set<PeerID> = [id]
        var frontier = Set(peers).subtracting(reached).sorted()
        var replies: [(node: PeerID, reply: Result<Value, TransportError>)] = []
        while !frontier.isEmpty {
            let peer = frontier.removeFirst()
            guard reached.insert(peer).inserted else { continue }
            do {
                let reply = try await transport.request(request, to: peer, channel: .admin, timeout: timeout)
                replies.append((peer, .success(reply)))
                let known = (reply["known"]?.arrayValue ?? []).compactMap { $0.stringValue.flatMap { try? PeerID(parsing: $0) } }
                frontier += known.filter { !reached.contains($0) && !frontier.contains($0) }
            } catch {
                replies.append((peer, .failure(error)))
            }
        }
        return replies
    }

    /// Applies a swap another member pushed; the reply for it, with the members this node had
    /// before and has after (`known`), so that the push can go on from there.
    func applyPushedSwap(_ message: InboundMessage) async -> Value {
        guard case .value(let request) = message.payload, case .string(let kind)? = request["swap"],
              case .string(let source)? = request["source"] else {
            return .map(["ok": false, "error": "malformed swap request"])
        }
        let file = request["file"]?.stringValue ?? "\(kind).lua"
        logger.notice("swap pushed by a member", metadata: ["from": "\(message.from)", "kind": "\(kind)", "file": "\(file)"])
        let before = members
        let outcome = await swap(kind, source: source, fileName: file)
        let known = Value.array(Set(before + members).sorted().map { .string($0.description) })
        switch outcome {
        case .success(let report):
            return .map(["ok": true, "kind": .string(kind), "before": .string(report.before), "after": .string(report.after),
                         "members": .int(Int64(report.members.count)), "known": known])
        case .failure(let refusal):
            return .map(["ok": false, "error": .string(refusal.description), "known": known])
        }
    }

    /// Swaps `kind` (`overlay`, `placement` or `actor`) on this node alone.
    func swap(_ kind: String, source: String, fileName: String) async -> Result<SwapReport, SwapRefusal> {
        do {
            switch kind {
            case "overlay": return .success(try swapOverlay(source: source, fileName: fileName))
            case "placement": return .success(try swapPlacement(source: source, fileName: fileName))
            case "actor": return .success(try await swapActor(source: source, fileName: fileName))
            default: return .failure(SwapRefusal(description: "unknown script kind '\(kind)': use overlay, placement or actor"))
            }
        } catch {
            return .failure(SwapRefusal(description: "\(error)"))
        }
    }

    private static func outcome(of reply: Value) -> Result<SwapReport, SwapRefusal> {
        guard case .bool(true)? = reply["ok"] else {
            return .failure(SwapRefusal(description: reply["error"]?.stringValue ?? "refused"))
        }
        return .success(SwapReport(
            kind: reply["kind"]?.stringValue ?? "?", before: reply["before"]?.stringValue ?? "?",
            after: reply["after"]?.stringValue ?? "?", members: []))
    }

    /// Replaces the Lua actor serving the capability the new script names: the new script
    /// loads in its own VM, every process moves to it (`handoff` in the old script, `resume`
    /// in the new; a process that cannot be handed over starts afresh), and calls that arrive
    /// meanwhile queue behind the moves. A script that does not load or breaks the contract is
    /// refused and the old one keeps serving.
    public func swapActor(source: String, fileName: String) async throws(NodeError) -> SwapReport {
        let replacement: LuaActorHost
        do {
            replacement = try LuaActorHost(
                source: source, fileName: fileName, limits: config.scriptLimits,
                seed: StableHash.hash64(Array("\(config.name)/\(fileName)".utf8)), logger: logger, metrics: metrics)
        } catch {
            metrics.swapped("actor", ok: false)
            throw .script(error)
        }
        metrics.swapped("actor", ok: true)
        let capability = replacement.capability
        guard let old = router.host(for: capability) as? LuaActorHost else {
            router.install(replacement, for: capability)
            announce(capability)
            return SwapReport(kind: "actor", before: "none", after: replacement.scriptVersion, members: core.members)
        }
        let moved = await old.handOver(to: replacement)
        router.install(replacement, for: capability)
        logger.notice("actor swapped", metadata: ["capability": "\(capability)", "processes": "\(moved)"])
        return SwapReport(kind: "actor", before: old.scriptVersion, after: replacement.scriptVersion, members: core.members)
    }

    /// Replaces the placement script: the new policy must compute a table for every capability
    /// the members serve before it takes over; then processes move as for any table change.
    /// On any failure the old policy keeps placing.
    public func swapPlacement(source: String, fileName: String) throws(NodeError) -> SwapReport {
        let before = placement.policy.name
        var replacement: PlacementCore
        do {
            let script = try PlacementScript(source: source, fileName: fileName, limits: config.scriptLimits)
            let policy = MeteredPlacement.wrapping(LuaPlacement(script: script), metrics: metrics)
            replacement = PlacementCore(policy: policy, shardCount: config.shardCount)
        } catch {
            metrics.swapped("placement", ok: false)
            throw .script(error)
        }
        if let failure = replacement.update(members: placementMembers()).first {
            metrics.swapped("placement", ok: false)
            logger.error("placement swap refused; the old policy keeps placing", metadata: ["error": "\(failure)"])
            throw .script(failure.error)
        }
        metrics.swapped("placement", ok: true)
        placement = replacement
        updatePlacement()
        return SwapReport(kind: "placement", before: before, after: replacement.policy.name, members: core.members)
    }
}
