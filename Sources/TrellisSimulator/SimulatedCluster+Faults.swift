import TrellisMembership
import TrellisWire

extension SimulatedCluster {
    /// Kills `node`: it stops at once and every connection to it is lost.
    public func kill(_ node: PeerID) { kill(node, at: now) }

    /// Kills `node` as of `time` (now, or a stop that fell due during the last window).
    func kill(_ node: PeerID, at time: Int64) {
        guard let index = directory.indices[node], directory.status[Int(index)].alive else { return }
        directory.status[Int(index)].alive = false
        shard(of: index).nodes[directory.local(index)].timerAt = nil
        livenessChanges += 1
        cutLinks(at: time) { $0 == index || $1 == index }
    }

    /// Freezes (`true`) or thaws (`false`) `node`, like SIGSTOP and SIGCONT.
    public func setFrozen(_ node: PeerID, _ frozen: Bool) {
        guard let index = directory.indices[node] else { return }
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
            for id in group { if let index = directory.indices[id] { directory.status[Int(index)].group = number + 1 } }
        }
        cutLinks(at: now) { directory.status[Int($0)].group != directory.status[Int($1)].group }
    }

    /// Ends every partition: all live nodes can reach one another again.
    public func heal() {
        for index in directory.status.indices { directory.status[index].group = 0 }
    }

    /// Drops every link from `a` to `b` for which `cut(a, b)` holds; the node at the live end
    /// learns it one latency after `time`.
    private func cutLinks(at time: Int64, _ cut: (Int32, Int32) -> Bool) {
        for shard in shards {
            for local in shard.nodes.indices {
                let from = Int32(local * shards.count + shard.number)
                guard directory.status[Int(from)].alive else { continue }
                for to in shard.nodes[local].links.sorted() where cut(from, to) {
                    shard.nodes[local].links.remove(to)
                    let reason = directory.status[Int(to)].alive ? "unreachable (partitioned)" : "connection lost"
                    shard.queue.push(.event(.connectionDown(directory.ids[Int(to)], reason: reason), at: from), at: time + latency)
                }
            }
        }
    }
}
