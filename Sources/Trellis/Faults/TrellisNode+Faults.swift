import TrellisFaults
import TrellisMembership
import TrellisTransport
import TrellisWire

/// The fault plan a node applies and what it has done so far.
public struct FaultStatus: Sendable, Equatable {
    /// The plan in force (`.none` when no faults are injected).
    public var plan: FaultPlan
    /// Messages delivered, dropped, delayed and duplicated under it.
    public var counts: FaultCounts
    /// The fault script's latest failure, if any (those messages were delivered).
    public var lastScriptError: String?
    /// The peers this node is partitioned from.
    public var unreachable: [PeerID]
}

/// One node's answer to a cluster-wide fault plan: nil `error` when it installed the plan.
public struct NodeFaultResult: Sendable, Equatable {
    public var node: PeerID
    public var error: String?
}

/// Fault injection on the running node: rules and scripts that drop, delay, duplicate or
/// reorder what this node receives, and partitions.
extension TrellisNode {
    /// Replaces the fault plan this node applies to the messages it receives: application
    /// messages, requests, membership messages and heartbeat answers (channel `membership`).
    /// Admin pushes are never faulted. The empty plan stops injecting.
    ///
    /// - Throws: `.script` when the plan's fault script does not load or breaks the contract;
    ///   the plan in force stays.
    public func injectFaults(_ plan: FaultPlan) throws(NodeError) {
        let decider: FaultDecider
        do {
            decider = try FaultDecider(
                plan: plan, seed: config.randomSeed ?? StableHash.hash64(Array("\(config.name)/faults".utf8)),
                limits: config.scriptLimits)
        } catch {
            logger.error("fault plan refused; the one in force stays", metadata: ["error": "\(error)"])
            throw .script(error)
        }
        faults.install(decider)
        if plan.isEmpty {
            logger.notice("fault injection off")
        } else {
            let script = plan.script.map { " and \($0.fileName)" } ?? ""
            logger.notice("fault injection on: \(plan.rules.map(\.description))\(script)")
        }
    }

    /// Stops injecting faults (partitions stay until `setUnreachable([])`).
    public func clearFaults() {
        faults.install(nil)
        logger.notice("fault injection off")
    }

    /// The plan in force, its counts and this node's partitions.
    public var faultStatus: FaultStatus {
        let (plan, counts, error) = faults.status
        return FaultStatus(
            plan: plan, counts: counts, lastScriptError: error?.description,
            unreachable: transport.unreachablePeers.sorted())
    }

    /// Installs `plan` here, then pushes it over the `admin` channel to every node reachable
    /// through the members graph (as `rollOut` does); each node's answer, this node first.
    public func rollOutFaults(_ plan: FaultPlan, timeout: Duration = .seconds(10)) async -> [NodeFaultResult] {
        var results: [NodeFaultResult]
        do {
            try injectFaults(plan)
            results = [NodeFaultResult(node: id, error: nil)]
        } catch {
            results = [NodeFaultResult(node: id, error: error.description)]
        }
        for (node, reply) in await pushThroughCluster(.map(["faults": plan.value]), startingWith: members, timeout: timeout) {
            switch reply {
            case .success(let value):
                results.append(NodeFaultResult(node: node, error: value["ok"] == .bool(true) ? nil : (value["error"]?.stringValue ?? "refused")))
            case .failure(let error):
                results.append(NodeFaultResult(node: node, error: "\(error)"))
            }
        }
        return results
    }

    /// The peers among those this node knows (members and connected peers) that `selectors`
    /// name, by id or by name.
    ///
    /// - Throws: the selectors that name no known peer.
    public func knownPeers(named selectors: [String]) throws(FaultRuleError) -> Set<PeerID> {
        let known = Set(members + Array(peerMetadata.keys)).subtracting([id])
        var found: Set<PeerID> = []
        var unknown: [String] = []
        for selector in selectors {
            let matches = known.filter { $0.description == selector || $0.name == selector }
            if matches.isEmpty { unknown.append(selector) } else { found.formUnion(matches) }
        }
        guard unknown.isEmpty else {
            throw FaultRuleError(description: "no known peer is named \(unknown.joined(separator: ", ")); use a member's name or id")
        }
        return found
    }

    /// Applies what another member pushed on the `admin` channel (a swap or a fault plan);
    /// the reply for it.
    func applyPushedAdmin(_ message: InboundMessage) async -> Value {
        guard case .value(let request) = message.payload, let planValue = request["faults"] else {
            return await applyPushedSwap(message)
        }
        logger.notice("fault plan pushed by a member", metadata: ["from": "\(message.from)"])
        let known = Value.array(members.map { .string($0.description) })
        do {
            try injectFaults(try FaultPlan(value: planValue))
            return .map(["ok": true, "known": known])
        } catch {
            return .map(["ok": false, "error": .string("\(error)"), "known": known])
        }
    }

    /// Replaces the set of peers this node is partitioned from (for fault injection), and
    /// returns once the connections it cut have closed.
    ///
    /// Every connection to or from a peer in `peers` closes at once, which the overlay sees as
    /// a lost connection (`on_down`); new connections to them fail at once as unreachable
    /// (partitioned), and their connections to this node are refused in the handshake.
    /// Application sends to them throw `TransportError.partitioned`. The cut holds on this
    /// side alone; call it on both sides for a symmetric partition. An empty set heals:
    /// connections can be made again (the overlay may need a `join` to find its peers).
    public func setUnreachable(_ peers: Set<PeerID>) async {
        await transport.setUnreachable(peers)
    }

    /// Hands a membership event to the core as the fault plan says: not at all, once, twice,
    /// or once after a delay.
    func admitMembership(_ event: MembershipEvent, from peer: PeerID, message: Value?) {
        switch faults.verdict(from: peer, channel: .membership, message: { message }) {
        case .deliver:
            handleMembership(event)
        case .drop:
            break
        case .duplicate:
            handleMembership(event)
            handleMembership(event)
        case .delay(let milliseconds):
            Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(milliseconds))
                await self?.handleMembership(event)
            }
        }
    }
}
