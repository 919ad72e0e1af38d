// Discovery strategies and settings are part of the node's API (`startDiscovery`): users of
// `Trellis` get their types without importing the discovery layer themselves.
@_exported import TrellisDiscovery
import NIOCore
import TrellisWire

/// A node's running discovery: it stops by itself when the node stops or starts leaving.
public struct DiscoveryHandle: Sendable {
    private let driver: Task<Void, Never>
    private let watcher: Task<Void, Never>?

    init(driver: Task<Void, Never>, watcher: Task<Void, Never>?) {
        self.driver = driver
        self.watcher = watcher
    }

    /// Stops polling, shuts the strategy down, and returns once both are done. Call it before
    /// shutting down the event loop group the strategy uses: a node that stops ends its
    /// discovery too, but without waiting for it.
    public func stop() async {
        watcher?.cancel()
        driver.cancel()
        await driver.value
    }
}

/// Cluster formation by discovery: peers a strategy finds are fed to the overlay's `join`.
extension TrellisNode {
    /// Starts polling `strategy` and joining the peers it finds that are not members, as
    /// `settings` say (see `docs/discovery.md`). Polling goes on for as long as the node runs,
    /// so a peer that drops out of the membership (it restarted, or a partition cut it off) is
    /// joined again: the cluster heals without anyone calling `join`.
    ///
    /// It stops by itself, and shuts the strategy down, when the node stops or starts leaving.
    ///
    /// - Throws: ``DiscoveryError/invalidSetting(_:_:)`` when a setting is out of range.
    public func startDiscovery(
        _ strategy: any DiscoveryStrategy, settings: DiscoverySettings = DiscoverySettings()
    ) throws(DiscoveryError) -> DiscoveryHandle {
        let driver = try DiscoveryDriver(
            strategy: strategy, target: NodeDiscoveryTarget(node: self), settings: settings, logger: logger)
        let task = Task {
            var driver = driver
            await driver.run()
        }
        logger.info("discovery started", metadata: ["strategy": "\(strategy.name)"])
        guard !stopped else { return DiscoveryHandle(driver: task, watcher: nil) }
        // A node's member-event streams finish when it stops: that ends the driver's sleep.
        let events = memberEvents()
        let watcher = Task {
            for await _ in events {}
            task.cancel()
        }
        return DiscoveryHandle(driver: task, watcher: watcher)
    }

    /// Starts discovery as `trellis node --discovery` names it (see ``DiscoverySpec``): the
    /// strategy is made for this node (its id, cluster name and cookie), then polled as
    /// ``startDiscovery(_:settings:)`` does.
    ///
    /// - Throws: ``DiscoveryError`` when a setting is out of range, a name or server is
    ///   invalid, or the gossip socket cannot be opened.
    public func startDiscovery(
        _ spec: DiscoverySpec, settings: DiscoverySettings = DiscoverySettings(), group: any EventLoopGroup
    ) async throws(DiscoveryError) -> DiscoveryHandle {
        try settings.validate()
        let strategy = try await spec.strategy(
            selfID: id, clusterName: config.clusterName, cookie: config.cookie, group: group, logger: logger)
        return try startDiscovery(strategy, settings: settings)
    }

    /// The members while the node runs; nil once it stopped or started leaving, which ends
    /// its discovery (a leaving node must not join anyone again).
    fileprivate func membersForDiscovery() -> Set<PeerID>? {
        stopped || leaving ? nil : Set(members)
    }
}

/// A node as the discovery driver sees it.
private struct NodeDiscoveryTarget: DiscoveryTarget {
    let node: TrellisNode

    var selfID: PeerID { node.id }

    func members() async -> Set<PeerID>? { await node.membersForDiscovery() }

    func join(_ peer: PeerID) async { await node.join(peer) }
}
