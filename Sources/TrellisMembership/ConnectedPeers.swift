import TrellisWire

/// The peers whose membership connection is up: a set to look them up, and the same peers in
/// order, kept in order as they come and go. Every heartbeat period walks them in order (so
/// that simulations repeat); sorting them each time cost more than keeping them sorted.
struct ConnectedPeers {
    private(set) var set: Set<PeerID> = []
    private var sorted = SortedArray<PeerID>()

    /// The peers, sorted.
    var inOrder: [PeerID] { sorted.elements }

    func contains(_ peer: PeerID) -> Bool { set.contains(peer) }

    mutating func insert(_ peer: PeerID) {
        if set.insert(peer).inserted { sorted.insert(peer) }
    }

    /// Removes `peer`; returns whether it was there.
    @discardableResult
    mutating func remove(_ peer: PeerID) -> Bool {
        guard set.remove(peer) != nil else { return false }
        sorted.remove(peer)
        return true
    }
}
