import TrellisFaults
import TrellisLua
import TrellisMembership
import TrellisWire

extension SimulatedCluster {
    /// Kills `node`: it stops at once and every connection to it is lost.
    public func kill(_ node: PeerID) { kill(node, at: now) }

    /// Kills `node` as of `time` (now, or a stop that fell due during the last window).
    func kill(_ node: PeerID, at time: Int64) {
        guard let index = directory.index(of: node), directory.status[Int(index)].alive else { return }
        directory.status[Int(index)].alive = false
        shard(of: index).nodes[directory.local(index)].timerAt = nil
        livenessChanges += 1
        cutLinks(at: time) { $0 == index || $1 == index }
    }

    /// Freezes (`true`) or thaws (`false`) `node`, like SIGSTOP and SIGCONT.
    public func setFrozen(_ node: PeerID, _ frozen: Bool) {
        guard let index = directory.index(of: node) else { return }
        directory.status[Int(index)].frozen = frozen
        guard !frozen else { return }
        let shard = shard(of: index)
        let held = shard.nodes[directory.local(index)].heldWhileFrozen
        shard.nodes[directory.local(index)].heldWhileFrozen = []
        for event in held { deliver(event, to: node) }
        shard.now = now
        shard.scheduleTimer(for: index)
    }

    /// Splits the network: each list is a group whose nodes can only reach one another; the
    /// nodes in no list form one more group. Connections across groups are lost at once, and
    /// new ones fail, until `heal()`.
    public func partition(_ groups: [[PeerID]]) {
        for index in directory.status.indices { directory.status[index].group = 0 }
        for (number, group) in groups.enumerated() {
            for id in group { if let index = directory.index(of: id) { directory.status[Int(index)].group = number + 1 } }
        }
        cutLinks(at: now) { directory.status[Int($0)].group != directory.status[Int($1)].group }
    }

    /// Ends every partition: all live nodes can reach one another again.
    public func heal() {
        for index in directory.status.indices { directory.status[index].group = 0 }
    }

    /// Makes `receivers` (every node added so far when nil) judge the membership messages and
    /// heartbeat answers they receive by `plan`, as `TrellisNode.injectFaults` does on a real
    /// node; the empty plan stops it. Each shard decides with its own seeded decider, so runs
    /// repeat.
    ///
    /// - Throws: when the plan's fault script does not load; nothing changes then.
    public func setFaults(_ plan: FaultPlan, on receivers: [PeerID]? = nil, limits: ScriptLimits = .init()) throws(ScriptError) {
        let targets = (receivers ?? directory.ids).compactMap { directory.index(of: $0) }
        faultPlansSet += 1
        let deciders = try shards.map { (shard) throws(ScriptError) -> FaultDecider? in
            guard !plan.isEmpty else { return nil }
            return try FaultDecider(plan: plan, seed: seed &+ faultPlansSet &* 0x9e37_79b9 &+ UInt64(shard.number), limits: limits)
        }
        for (shard, decider) in zip(shards, deciders) {
            if let decider { shard.faultDeciders.append(decider) }
            for target in targets { shard.faults[target] = decider }
        }
    }

    /// What the fault plans have done so far, summed over every node and every plan set.
    public var faultCounts: FaultCounts {
        shards.flatMap(\.faultDeciders).reduce(into: FaultCounts()) { total, decider in
            total.delivered += decider.counts.delivered
            total.dropped += decider.counts.dropped
            total.delayed += decider.counts.delayed
            total.duplicated += decider.counts.duplicated
            total.scriptErrors += decider.counts.scriptErrors
        }
    }

    /// Drops every link from `a` to `b` for which `cut(a, b)` holds; the node at the live end
    /// learns it one latency after `time`.
    private func cutLinks(at time: Int64, _ cut: (Int32, Int32) -> Bool) {
        for shard in shards {
            for local in shard.nodes.indices {
                let from = Int32(local * shards.count + shard.number)
                guard directory.status[Int(from)].alive else { continue }
                for to in shard.nodes[local].links.elements where cut(from, to) {
                    shard.nodes[local].links.remove(to)
                    let reason = directory.status[Int(to)].alive ? "unreachable (partitioned)" : "connection lost"
                    shard.queue.push(.event(.connectionDown(directory.ids[Int(to)], reason: reason), at: from), at: time + latency)
                }
            }
        }
    }
}
