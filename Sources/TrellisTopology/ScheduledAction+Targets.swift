import TrellisWire

extension ScheduledAction {
    /// The nodes, by index, that a `leave`, `kill` or `restart` acts on: the named ones, or a
    /// random `fraction` of the `running` ones (at least one).
    func targets(running: [Int], index: [String: Int], random: inout SeededRandom) -> [Int] {
        guard let fraction else { return nodes.compactMap { index[$0] } }
        var pool = running
        let count = min(pool.count, max(1, Int((fraction * Double(pool.count)).rounded())))
        return (0..<count).map { _ in pool.remove(at: random.below(pool.count)) }.sorted()
    }

    /// The groups of a `partition`, by node index: the named groups (or a random `fraction` of
    /// the running nodes), then the running nodes in none of them as one more group.
    func partitionGroups(running: [Int], index: [String: Int], random: inout SeededRandom) -> [[Int]] {
        var groups = fraction == nil ? self.groups.map { $0.compactMap { index[$0] } } : [targets(running: running, index: index, random: &random)]
        let grouped = Set(groups.joined())
        let rest = running.filter { !grouped.contains($0) }
        if !rest.isEmpty { groups.append(rest) }
        return groups
    }
}
