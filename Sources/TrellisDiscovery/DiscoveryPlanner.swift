import TrellisWire

/// How often to poll a strategy and how eagerly to join what it finds.
public struct DiscoverySettings: Sendable, Equatable {
    /// Time between two polls, before jitter.
    public var interval: Duration
    /// Each wait between polls is `interval × (1 ± jitter)`, drawn at random, so nodes started
    /// together do not poll (and join) in step. From 0 to 1.
    public var jitter: Double
    /// How long after joining a peer that did not become a member it is joined again; the wait
    /// doubles with each further try, up to `maxRejoinBackoff`, and is drawn at random between
    /// half and all of that ("equal jitter"), so a restarted node is not stampeded.
    public var rejoinBackoff: Duration
    /// The longest wait between two joins of the same peer.
    public var maxRejoinBackoff: Duration
    /// At most this many joins per poll; the others wait for later polls. One join is usually
    /// enough for an overlay to learn the rest of the cluster.
    public var maxJoinsPerPoll: Int
    /// Which discovered peers are joined.
    public var joinPolicy: JoinPolicy

    public init(
        interval: Duration = .seconds(5), jitter: Double = 0.2,
        rejoinBackoff: Duration = .seconds(1), maxRejoinBackoff: Duration = .seconds(60),
        maxJoinsPerPoll: Int = 8, joinPolicy: JoinPolicy = .everyNonMember
    ) {
        self.interval = interval
        self.jitter = jitter
        self.rejoinBackoff = rejoinBackoff
        self.maxRejoinBackoff = maxRejoinBackoff
        self.maxJoinsPerPoll = maxJoinsPerPoll
        self.joinPolicy = joinPolicy
    }

    /// Checks every setting is in range.
    ///
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` naming the first one that is not.
    public func validate() throws(DiscoveryError) {
        if interval <= .zero { throw .invalidSetting("interval", "must be positive, e.g. 5 s") }
        if !(0...1).contains(jitter) { throw .invalidSetting("jitter", "must be from 0 to 1, e.g. 0.2") }
        if rejoinBackoff <= .zero { throw .invalidSetting("rejoinBackoff", "must be positive, e.g. 1 s") }
        if maxRejoinBackoff < rejoinBackoff {
            throw .invalidSetting("maxRejoinBackoff", "must be at least rejoinBackoff (\(rejoinBackoff))")
        }
        if maxJoinsPerPoll < 1 { throw .invalidSetting("maxJoinsPerPoll", "must be at least 1") }
        if case .whileFewerMembersThan(let count) = joinPolicy, count < 2 {
            throw .invalidSetting("joinPolicy", "whileFewerMembersThan needs at least 2 (members include the node itself)")
        }
    }

    /// The wait before the next poll: `interval × (1 ± jitter)`.
    public func pollDelay(using random: inout some RandomNumberGenerator) -> Duration {
        interval * (1 + jitter * Double.random(in: -1...1, using: &random))
    }
}

/// Which discovered peers the driver joins.
public enum JoinPolicy: Sendable, Equatable {
    /// Every discovered peer that is not a member: right for overlays whose members are the
    /// whole cluster (`full_mesh`, `static`), where a missing member means something to heal.
    case everyNonMember
    /// Only while the node has fewer members than this (itself included): right for overlays
    /// with partial views (`hyparview`, clients of `client_server`), where most peers are never
    /// members and one join through any of them is enough.
    case whileFewerMembersThan(Int)
}

/// What one poll found and whom to join: the decision, without any I/O.
public struct DiscoveryPlan: Sendable, Equatable {
    /// Peers found this poll and not the poll before.
    public var appeared: Set<PeerID>
    /// Peers found the poll before and not this one.
    public var vanished: Set<PeerID>
    /// Peers to join now, sorted.
    public var joins: [PeerID]
    /// Discovered non-members left for a later poll (backing off, or over `maxJoinsPerPoll`).
    public var deferred: Int
}

/// Decides, poll after poll, which discovered peers to join: pure state, no clock and no I/O,
/// so every decision can be tested step by step.
///
/// A peer is joined when it is discovered but not a member. Joining it again waits a backoff
/// that doubles, with jitter, for as long as it stays a non-member; once it becomes a member or
/// vanishes its backoff is forgotten, so when a member later drops (it restarted, a partition
/// cut it off) the next poll joins it at once. That is how re-polling heals a cluster.
public struct DiscoveryPlanner: Sendable {
    /// The node's own id, never joined.
    public let selfID: PeerID
    /// The settings the plans follow.
    public let settings: DiscoverySettings
    /// The peers the latest poll found.
    public private(set) var discovered: Set<PeerID> = []
    private var attempts: [PeerID: Attempt] = [:]

    private struct Attempt: Sendable {
        var joins: Int
        var notBefore: Duration
    }

    public init(selfID: PeerID, settings: DiscoverySettings) {
        self.selfID = selfID
        self.settings = settings
    }

    /// Plans one poll: `discovered` is what the strategy found, `members` the node's members
    /// now, and `now` the time since the driver started.
    public mutating func plan(
        discovered found: Set<PeerID>, members: Set<PeerID>, now: Duration, using random: inout some RandomNumberGenerator
    ) -> DiscoveryPlan {
        let found = found.subtracting([selfID])
        defer { discovered = found }
        let candidates = found.subtracting(members)
        attempts = attempts.filter { candidates.contains($0.key) }
        var plan = DiscoveryPlan(
            appeared: found.subtracting(discovered), vanished: discovered.subtracting(found), joins: [], deferred: candidates.count)
        if case .whileFewerMembersThan(let count) = settings.joinPolicy, members.union([selfID]).count >= count {
            return plan
        }
        // Peers never tried first, then those tried least; ties broken at random.
        let due = candidates.filter { (attempts[$0]?.notBefore ?? .zero) <= now }.shuffled(using: &random)
        let chosen = due.enumerated()
            .sorted { (attempts[$0.element]?.joins ?? 0, $0.offset) < (attempts[$1.element]?.joins ?? 0, $1.offset) }
            .prefix(settings.maxJoinsPerPoll).map(\.element)
        for peer in chosen {
            let joins = (attempts[peer]?.joins ?? 0) + 1
            attempts[peer] = Attempt(joins: joins, notBefore: now + backoff(afterJoins: joins, using: &random))
        }
        plan.joins = chosen.sorted()
        plan.deferred -= chosen.count
        return plan
    }

    /// `rejoinBackoff × 2^(joins − 1)`, capped at `maxRejoinBackoff`, times a random factor
    /// from ½ to 1.
    private func backoff(afterJoins joins: Int, using random: inout some RandomNumberGenerator) -> Duration {
        let doubled = settings.rejoinBackoff * (1 << min(joins - 1, 30))
        return min(doubled, settings.maxRejoinBackoff) * Double.random(in: 0.5...1, using: &random)
    }
}
