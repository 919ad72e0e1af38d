import TrellisWire

/// The peers whose membership connection is up: a set to look them up, and the same peers in
/// order, kept in order as they come and go. Every heartbeat period walks them in order (so
/// that simulations repeat); sorting them each time cost more than keeping them sorted.
struct ConnectedPeers {
    private(set) var set: Set<PeerID> = []
    /// The peers, sorted.
    private(set) var inOrder: [PeerID] = []

    func contains(_ peer: PeerID) -> Bool { set.contains(peer) }

    mutating func insert(_ peer: PeerID) {
        guard set.insert(peer).inserted else { return }
        inOrder.insert(peer, at: position(of: peer))
    }

    /// Removes `peer`; returns whether it was there.
    @discardableResult
    mutating func remove(_ peer: PeerID) -> Bool {
        guard set.remove(peer) != nil else { return false }
        inOrder.remove(at: position(of: peer))
        return true
    }

    /// Where `peer` is in `inOrder`, or would be.
    private func position(of peer: PeerID) -> Int {
        var low = 0, high = inOrder.count
        while low < high {
            let middle = (low + high) / 2
            if inOrder[middle] < peer { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
