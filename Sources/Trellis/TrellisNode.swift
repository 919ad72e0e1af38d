import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import TrellisFaults
import TrellisLua
import TrellisMembership
import TrellisPlacement
import TrellisTransport
import TrellisWire

/// A cluster node: a TCP transport, an overlay script steering membership, and a messaging API.
///
/// The actor owns the membership core and the overlay's Lua VM (the VM never leaves it). It
/// feeds the core the transport's control events and a timer, and carries out the core's
/// directives on the transport. Application messages never pass through the actor or Lua:
/// `send`, `request` and `messages` go straight to the transport.
public actor TrellisNode {
    /// This node's id, `name@host:port`, with the port actually bound.
    public nonisolated let id: PeerID
    /// Messages that arrived on application channels, in arrival order per connection.
    public nonisolated let messages: InboundMessages
    /// Messages broadcast by any node of the cluster (this one excepted), each once.
    public nonisolated var broadcasts: AsyncStream<BroadcastMessage> { relay.delivered }

    let transport: Transport
    let faults: FaultInjector
    let router: ProcessRouter
    let relay: BroadcastRelay
    let logger: Logger
    let config: NodeConfiguration
    let metrics: NodeMetrics
    private let clock = ContinuousClock()
    private let startedAt: ContinuousClock.Instant
    let requestHandlers: RequestHandlerBox
    private let messageSink: AsyncStream<[InboundMessage]>.Continuation
    var core: MembershipCore
    var peerMetadata: [PeerID: PeerMetadata] = [:]
    var ownMetadata: PeerMetadata
    var placement: PlacementCore
    /// Set once `leave` starts: this node no longer owns any shard.
    var leaving: Bool { router.isLeaving.load(ordering: .relaxed) }
    /// Peers that announced they serve no capability any more after serving some: they are
    /// leaving. One that comes back under its name serving capabilities is taken off again;
    /// one that no longer has a connection here is forgotten when the next leaver is noted.
    var leavingPeers: Set<PeerID> = []
    /// Set once a leaving node has handed its processes off: until it stops, it routes by the
    /// tables it handed off by, whatever its overlay does to its members as it leaves.
    var placementFrozen = false
    /// Set once `join` has closed the router's join gate: it closes at most once per node.
    private var joinGateUsed = false
    /// The transport's shutdown, once `stop` has started it.
    private var transportShutdown: Task<Void, Never>?
    /// How the transport's request handler reaches this node for pushed swaps; emptied on stop.
    private let selfHandle: NIOLockedValueBox<TrellisNode?>
    var subscribers: [Int: AsyncStream<MemberEvent>.Continuation] = [:]
    var nextSubscriber = 0
    private var loops: [Task<Void, Never>] = []
    var stopped = false
    var failureLog = LogThrottle()
    var refusalLog = LogThrottle()

    /// Starts a node: loads the overlay, binds the listener, runs the overlay's `init`.
    public static func start(_ config: NodeConfiguration, group: any EventLoopGroup) async throws(NodeError) -> TrellisNode {
        var logger = config.logger
        let overlay: OverlayScript
        do {
            overlay = try OverlayScript(
                source: config.overlaySource, fileName: config.overlayFileName, limits: config.scriptLimits,
                seed: config.randomSeed ?? StableHash.hash64(Array(config.name.utf8)),
                log: { [logger] line in logger.info("\(line)", metadata: ["source": "lua"]) }
            )
        } catch {
            throw .script(error)
        }
        let placementPolicy: any PlacementPolicy
        if let placementSource = config.placementSource {
            do {
                placementPolicy = LuaPlacement(script: try PlacementScript(
                    source: placementSource, fileName: config.placementFileName, limits: config.scriptLimits,
                    log: { [logger] line in logger.info("\(line)", metadata: ["source": "lua"]) }
                ))
            } catch {
                throw .script(error)
            }
        } else {
            placementPolicy = RendezvousPlacement()
        }
        let handlers = RequestHandlerBox()
        let routerHandle = NIOLockedValueBox<ProcessRouter?>(nil)
        let nodeHandle = NIOLockedValueBox<TrellisNode?>(nil)
        let (batches, sink) = AsyncStream<[InboundMessage]>.makeStream()
        let relayHandle = NIOLockedValueBox<BroadcastRelay?>(nil)
        let faults = FaultInjector(group: group)
        var transportConfig = TransportConfig(
            name: config.name, host: config.host, port: config.port, clusterName: config.clusterName,
            cookie: config.cookie, metadata: PeerMetadata(tags: config.tags, capabilities: config.capabilities),
            maxFrameSize: config.maxFrameSize, limits: config.connectionLimits, channelSettings: config.channels,
            tls: config.tls, busyWait: config.busyWait, logger: logger
        )
        transportConfig.metricsFactory = config.metricsFactory
        let transport: Transport
        do {
            transport = try await Transport.start(
                transportConfig, group: group,
                onMessages: { batch in
                    faults.pass(batch) { batch in
                        // A batch is one read of one connection, and a connection carries one channel.
                        switch batch.first?.channel {
                        case .broadcast:
                            let relay = relayHandle.withLockedValue { $0 }
                            for message in batch { relay?.receive(message) }
                        case .processes:
                            routerHandle.withLockedValue { $0 }?.serveCasts(batch)
                        default:
                            sink.yield(batch)
                        }
                    }
                },
                onRequest: { message, responder in
                    if message.channel == .admin, let node = nodeHandle.withLockedValue({ $0 }) {
                        // Pushed swaps and fault plans are operator actions, never faulted.
                        Task { responder.reply(await node.applyPushedAdmin(message)) }
                        return
                    }
                    faults.pass(from: message.from, channel: message.channel, message: { FaultInjector.value(of: message.payload) }) {
                        if message.channel == .processes, let router = routerHandle.withLockedValue({ $0 }) {
                            router.serve(message, responder)
                        } else {
                            handlers.handle(message, responder)
                        }
                    }
                }
            )
        } catch {
            throw .cannotListen("\(config.host):\(config.port)", "\(error)")
        }
        logger[metadataKey: "node"] = "\(transport.localID)"
        let metrics = NodeMetrics(factory: config.metricsFactory ?? MetricsSystem.factory, node: transport.localID)
        faults.bind(to: transport.localID, metrics: metrics)
        let relay = BroadcastRelay(selfID: transport.localID, transport: transport)
        relayHandle.withLockedValue { $0 = relay }
        let router = ProcessRouter(selfID: transport.localID, transport: transport, logger: logger, metrics: metrics)
        routerHandle.withLockedValue { $0 = router }
        let policy = MeteredPlacement.wrapping(placementPolicy, metrics: metrics)
        let node = TrellisNode(
            relay: relay, router: router, placement: PlacementCore(policy: policy, shardCount: config.shardCount),
            transport: transport, faults: faults, overlay: overlay, config: config, logger: logger, metrics: metrics,
            messages: InboundMessages(batches: batches), sink: sink, handlers: handlers, handle: nodeHandle
        )
        nodeHandle.withLockedValue { $0 = node }
        await node.startLoops()
        return node
    }

    private init(
        relay: BroadcastRelay, router: ProcessRouter, placement: PlacementCore, transport: Transport, faults: FaultInjector,
        overlay: OverlayScript, config: NodeConfiguration, logger: Logger, metrics: NodeMetrics,
        messages: InboundMessages, sink: AsyncStream<[InboundMessage]>.Continuation, handlers: RequestHandlerBox,
        handle: NIOLockedValueBox<TrellisNode?>
    ) {
        self.selfHandle = handle
        self.id = transport.localID
        self.transport = transport
        self.faults = faults
        self.relay = relay
        self.router = router
        self.placement = placement
        self.config = config
        self.metrics = metrics
        self.ownMetadata = PeerMetadata(tags: config.tags, capabilities: config.capabilities)
        self.logger = logger
        self.messages = messages
        self.messageSink = sink
        self.requestHandlers = handlers
        self.startedAt = clock.now
        let (core, directives) = MembershipCore.start(
            selfID: transport.localID, strategy: MeteredOverlay(overlay, metrics: metrics), config: config.overlayConfig,
            tags: config.tags, settings: config.membership, now: 0
        )
        self.core = core
        self.pendingStartDirectives = directives
    }

    private var pendingStartDirectives: [MembershipDirective]
    /// How many transport events the event loop handles in a row before it lets other tasks run.
    static let eventsBetweenYields = 16

    private func startLoops() {
        execute(pendingStartDirectives)
        pendingStartDirectives = []
        updatePlacement()
        let idle = config.processIdleTimeout
        loops.append(Task { [weak self, router] in
            let period = min(idle / 2, .seconds(1))
            while !Task.isCancelled {
                try? await Task.sleep(for: period)
                guard self != nil else { return }
                await router.passivateIdle(after: idle)
            }
        })
        let events = transport.events
        loops.append(Task { [weak self] in
            var handledSinceYield = 0
            for await event in events {
                guard let self else { return }
                await self.handle(event)
                // With events queued, this loop never suspends: give the thread up now and
                // then, or a node that fell behind holds a thread of the shared pool until it
                // has caught up, and the other nodes' loops and timers in this process starve.
                handledSinceYield += 1
                if handledSinceYield == Self.eventsBetweenYields {
                    handledSinceYield = 0
                    await Task.yield()
                }
            }
        })
        loops.append(Task { [weak self] in
            while !Task.isCancelled {
                guard let delay = await self?.delayUntilNextDeadline() else { return }
                try? await Task.sleep(for: delay)
                await self?.handleMembership(.timer)
            }
        })
    }

    // MARK: Joining and leaving

    /// Asks the overlay to join the cluster through `seed`.
    ///
    /// The first time a node without members joins, its calls and casts wait until a member
    /// comes up (at most `joinWaitLimit`): alone, it would own every shard and activate
    /// processes that already live in the cluster it is joining.
    public func join(_ seed: PeerID) {
        if !joinGateUsed, seed != id, core.members.allSatisfy({ $0 == id }) {
            joinGateUsed = true
            router.joinGate.close()
            Task { [weak self] in
                try? await Task.sleep(for: Self.joinWaitLimit)
                await self?.stopWaitingForMembers()
            }
        }
        handleMembership(.join(seed))
    }

    /// How long calls on a joining node wait for its first member before it serves alone.
    public static var joinWaitLimit: Duration { .seconds(5) }

    private func stopWaitingForMembers() {
        guard router.joinGate.closed else { return }
        logger.warning("no member came up within \(Self.joinWaitLimit) of joining; serving alone until one does")
        router.joinGate.open()
    }

    /// Leaves the cluster gracefully: tells its peers it serves no capability any more and,
    /// `leaveAnnouncementGrace` later, hands every process to its shard's new owner; runs the
    /// overlay's `leave` for this node and sends its messages, forwards calls that were already
    /// on their way here for 300 ms and then until every peer has let go of this node (at most
    /// `ProcessRouter.drainLimit` more), then stops; a peer still connected is told this node is
    /// going away, so that no call it sent is left in doubt (see `Transport.shutdown(gracefully:)`).
    public func leave() async {
        guard !stopped, !leaving else { return }
        router.isLeaving.store(true, ordering: .relaxed)
        if !ownMetadata.capabilities.isEmpty {
            // Peers stop placing shards here when they hear it, and await this node's handoff
            // of the shards it held. A node leaving at the same time leaves this one out of
            // the tables it hands off by, as this one does it, once it has heard.
            ownMetadata.capabilities = []
            transport.announce(ownMetadata)
            try? await Task.sleep(for: Self.leaveAnnouncementGrace)
        }
        await updatePlacement().value
        placementFrozen = true
        handleMembership(.leave(id))
        try? await Task.sleep(for: router.allHosts.isEmpty ? .milliseconds(50) : .milliseconds(300))
        if !router.allHosts.isEmpty { await router.drain(leavingToo: leavingPeers) }
        await stop(gracefully: true)
    }

    /// How long a leaving node that serves capabilities waits, after telling its peers it
    /// serves none any more, before it computes the tables it hands its processes off by.
    public static var leaveAnnouncementGrace: Duration { .milliseconds(100) }

    /// Stops at once, as if the process died: no goodbye to anyone.
    ///
    /// A second call (while the first is still closing connections, or later) returns only once
    /// the transport is shut down, so its caller may shut the event loops down next.
    public func stop() async {
        await stop(gracefully: false)
    }

    private func stop(gracefully: Bool) async {
        if let transportShutdown { return await transportShutdown.value }
        stopped = true
        router.joinGate.open()
        selfHandle.withLockedValue { $0 = nil }
        for loop in loops { loop.cancel() }
        let transport = self.transport
        let shutdown = Task { await transport.shutdown(gracefully: gracefully) }
        transportShutdown = shutdown
        await shutdown.value
        messageSink.finish()
        relay.finish()
        for subscriber in subscribers.values { subscriber.finish() }
        subscribers = [:]
    }

    var now: Int64 {
        (clock.now - startedAt).wholeMilliseconds
    }

    private func delayUntilNextDeadline() -> Duration? {
        guard !stopped else { return nil }
        return .milliseconds(max(1, min(core.nextDeadline - now, 100)))
    }
}
