/// The peers (global indices) a simulated node holds a membership connection to: a dozen or
/// so, kept sorted in an array. Every heartbeat and its answer look a peer up here, and
/// searching one short array is cheaper than hashing into a set.
struct NodeLinks {
    /// The peers, in ascending order.
    private(set) var sorted: [Int32] = []

    func contains(_ peer: Int32) -> Bool {
        let at = position(of: peer)
        return at < sorted.count && sorted[at] == peer
    }

    mutating func insert(_ peer: Int32) {
        let at = position(of: peer)
        if at == sorted.count || sorted[at] != peer { sorted.insert(peer, at: at) }
    }

    mutating func remove(_ peer: Int32) {
        let at = position(of: peer)
        if at < sorted.count && sorted[at] == peer { sorted.remove(at: at) }
    }

    /// Where `peer` is, or would be.
    private func position(of peer: Int32) -> Int {
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < peer { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
