import TrellisWire

/// A heartbeat-timeout failure detector: a pure value with an injected clock.
///
/// The node pings every watched peer on the membership channel; every answer is reported
/// with `heard(from:now:)`. A peer not heard from for `timeout` milliseconds is reported once
/// by `expired(now:)` and then counts as suspected until it is heard from again, which
/// `heard(from:now:)` reports as a recovery. A lost connection does not go through here: the
/// driver marks that peer down at once.
public struct FailureDetector: Sendable {
    /// Milliseconds of silence after which a watched peer is reported down.
    public let timeout: Int64

    private var lastHeard: [PeerID: Int64] = [:]
    private var suspected: Set<PeerID> = []
    /// No peer that is not suspected was last heard from before this time: until it is
    /// `timeout` old, `expired` has nothing to report and skips its walk through every peer.
    private var heardNoEarlierThan: Int64 = .max

    public init(timeout: Int64) {
        precondition(timeout > 0, "the failure detector's timeout must be positive")
        self.timeout = timeout
    }

    /// The peers being watched, sorted.
    public var watched: [PeerID] { lastHeard.keys.sorted() }

    /// Whether `peer` is watched and currently suspected.
    public func isSuspected(_ peer: PeerID) -> Bool { suspected.contains(peer) }

    /// Starts watching `peer`, as if just heard from.
    public mutating func watch(_ peer: PeerID, now: Int64) {
        lastHeard[peer] = now
        suspected.remove(peer)
        heardNoEarlierThan = min(heardNoEarlierThan, now)
    }

    /// Stops watching `peer`.
    public mutating func unwatch(_ peer: PeerID) {
        lastHeard[peer] = nil
        suspected.remove(peer)
    }

    /// Records a sign of life from `peer`. Returns `true` when the peer was suspected and has
    /// now recovered. Peers not watched are ignored.
    @discardableResult
    public mutating func heard(from peer: PeerID, now: Int64) -> Bool {
        guard let index = lastHeard.index(forKey: peer) else { return false }
        lastHeard.values[index] = max(lastHeard.values[index], now)
        guard !suspected.isEmpty, suspected.remove(peer) != nil else { return false }
        heardNoEarlierThan = min(heardNoEarlierThan, lastHeard.values[index])
        return true
    }

    /// The watched peers silent for longer than `timeout`, each reported once until heard from
    /// again; sorted, so that runs repeat.
    public mutating func expired(now: Int64) -> [PeerID] {
        guard heardNoEarlierThan < .max, now - heardNoEarlierThan > timeout else { return [] }
        var silent: [PeerID] = []
        heardNoEarlierThan = .max
        for (peer, heard) in lastHeard where !suspected.contains(peer) {
            if now - heard > timeout {
                silent.append(peer)
            } else {
                heardNoEarlierThan = min(heardNoEarlierThan, heard)
            }
        }
        guard !silent.isEmpty else { return [] }
        silent.sort()
        suspected.formUnion(silent)
        return silent
    }
}
