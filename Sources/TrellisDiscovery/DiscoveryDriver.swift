import Logging
import TrellisWire

/// What the driver needs from a node: its id, its members and its `join`. `TrellisNode`
/// provides one (`startDiscovery`); tests give the driver a fake.
public protocol DiscoveryTarget: Sendable {
    /// The node's own id, never joined.
    var selfID: PeerID { get }
    /// The node's members now (itself included), or nil once the node stopped: the driver
    /// then stops too.
    func members() async -> Set<PeerID>?
    /// Asks the node's overlay to join the cluster through `peer`.
    func join(_ peer: PeerID) async
}

/// The time source of a driver: real time by default, a fake one in tests.
public struct DiscoveryClock: Sendable {
    /// The time elapsed since some fixed start.
    public var now: @Sendable () -> Duration
    /// Waits `duration`; throws when the waiting task is cancelled.
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(now: @escaping @Sendable () -> Duration, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    /// The monotonic clock of the process.
    public static var continuous: DiscoveryClock {
        let clock = ContinuousClock()
        let start = clock.now
        return DiscoveryClock(now: { clock.now - start }, sleep: { try await clock.sleep(for: $0) })
    }
}

/// What one poll did.
public struct DiscoveryRound: Sendable, Equatable {
    /// The peers the strategy found (the node itself left out); empty when it failed.
    public var discovered: Set<PeerID>
    /// Who was joined and who changed; nil when the strategy failed.
    public var plan: DiscoveryPlan?
    /// Why the strategy failed, if it did.
    public var error: DiscoveryError?
}

/// Polls a strategy on an interval and joins, through the target, the peers it finds that are
/// not members, as a ``DiscoveryPlanner`` decides.
///
/// Polling never stops while the node runs, so a peer that drops out of the membership (it
/// restarted, or a partition cut it off) is joined again on a later poll: the cluster heals
/// without anyone calling `join` by hand. A failed poll is logged and joins nobody; the next
/// one comes as usual.
public struct DiscoveryDriver<Target: DiscoveryTarget>: Sendable {
    /// The strategy polled.
    public let strategy: any DiscoveryStrategy
    /// The node fed.
    public let target: Target
    private var planner: DiscoveryPlanner
    private let clock: DiscoveryClock
    private var random: SeededRandom
    private let logger: Logger
    private var failing = false

    /// A driver for `target`, polling `strategy` as `settings` say.
    ///
    /// - Parameter seed: seeds the jitter and backoff draws; random by default, so that nodes
    ///   do not draw alike.
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` when a setting is out of range.
    public init(
        strategy: any DiscoveryStrategy, target: Target, settings: DiscoverySettings = DiscoverySettings(),
        clock: DiscoveryClock = .continuous, seed: UInt64? = nil, logger: Logger = Logger(label: "trellis.discovery")
    ) throws(DiscoveryError) {
        try settings.validate()
        self.strategy = strategy
        self.target = target
        self.planner = DiscoveryPlanner(selfID: target.selfID, settings: settings)
        self.clock = clock
        self.random = SeededRandom(seed: seed ?? UInt64.random(in: .min ... .max))
        self.logger = logger
    }

    /// Polls until the task is cancelled or the target stops, then shuts the strategy down.
    /// The first poll is at once; each next one after ``DiscoverySettings/pollDelay(using:)``.
    public mutating func run() async {
        while !Task.isCancelled, await poll() != nil {
            do {
                try await clock.sleep(planner.settings.pollDelay(using: &random))
            } catch {
                break
            }
        }
        await strategy.shutdown()
    }

    /// One poll: asks the strategy, plans, and joins. Returns nil when the target has stopped.
    public mutating func poll() async -> DiscoveryRound? {
        let found: Set<PeerID>
        do {
            found = try await strategy.discover()
        } catch {
            guard await target.members() != nil else { return nil }
            if failing {
                logger.debug("discovery still failing", metadata: ["strategy": "\(strategy.name)", "error": "\(error)"])
            } else {
                logger.warning("\(error); polling again later", metadata: ["strategy": "\(strategy.name)"])
            }
            failing = true
            return DiscoveryRound(discovered: [], plan: nil, error: error)
        }
        guard let members = await target.members() else { return nil }
        if failing {
            logger.notice("discovery works again", metadata: ["strategy": "\(strategy.name)"])
            failing = false
        }
        let plan = planner.plan(discovered: found, members: members, now: clock.now(), using: &random)
        if !plan.appeared.isEmpty || !plan.vanished.isEmpty {
            logger.info(
                "discovered peers changed",
                metadata: [
                    "strategy": "\(strategy.name)", "appeared": "\(plan.appeared.sorted())",
                    "vanished": "\(plan.vanished.sorted())",
                ])
        }
        for peer in plan.joins {
            logger.debug("joining a discovered peer that is not a member", metadata: ["peer": "\(peer)"])
            await target.join(peer)
        }
        return DiscoveryRound(discovered: planner.discovered, plan: plan, error: nil)
    }
}
