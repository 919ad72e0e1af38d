import TrellisMembership
import TrellisWire

extension SimulatedCluster {
    /// Kills `node`: it stops at once and every connection to it is lost.
    public func kill(_ node: PeerID) {
        guard let index = index(of: node), nodes[Int(index)].alive else { return }
        nodes[Int(index)].alive = false
        nodes[Int(index)].timerAt = nil
        membershipVersion += 1
        cutLinks { $0 == index || $1 == index }
    }

    /// Freezes (`true`) or thaws (`false`) `node`, like SIGSTOP and SIGCONT.
    public func setFrozen(_ node: PeerID, _ frozen: Bool) {
        guard let index = index(of: node) else { return }
        nodes[Int(index)].frozen = frozen
        guard !frozen else { return }
        let held = nodes[Int(index)].heldWhileFrozen
        nodes[Int(index)].heldWhileFrozen = []
        for event in held { deliver(event, to: node) }
        scheduleTimer(for: index)
    }

    /// Splits the network: each list is a group whose nodes can only reach one another; the
    /// nodes in no list form one more group. Connections across groups are lost at once, and
    /// new ones fail, until `heal()`.
    public func partition(_ groups: [[PeerID]]) {
        for index in nodes.indices { nodes[index].group = 0 }
        for (number, group) in groups.enumerated() {
            for id in group { if let index = index(of: id) { nodes[Int(index)].group = number + 1 } }
        }
        cutLinks { nodes[Int($0)].group != nodes[Int($1)].group }
    }

    /// Ends every partition: all live nodes can reach one another again.
    public func heal() {
        for index in nodes.indices { nodes[index].group = 0 }
    }

    /// Drops every link from `a` to `b` for which `cut(a, b)` holds; the node at the live end
    /// learns it after one latency.
    private func cutLinks(_ cut: (Int32, Int32) -> Bool) {
        for a in nodes.indices where nodes[a].alive {
            let from = Int32(a)
            for b in nodes[a].links.sorted() where cut(from, b) {
                nodes[a].links.remove(b)
                let reason = nodes[Int(b)].alive ? "unreachable (partitioned)" : "connection lost"
                push(.connectionDown(ids[Int(b)], reason: reason), to: from, after: latency)
            }
        }
    }
}
