import Dispatch
import TrellisLua
import TrellisMembership
import TrellisWire

/// Many membership cores on an in-memory network with a virtual clock.
///
/// It carries out the same directives as the NIO shell: connections come up after a round trip
/// (or fail when the peer is dead or cut off), messages arrive after one latency in the order
/// sent unless lost, heartbeats are answered after a round trip by live, unfrozen peers, and
/// killing a node drops every connection to it.
///
/// The nodes are split over `shardCount` shards, run side by side one latency window at a time
/// (see `SimShard`): within a window no shard can affect another, and messages between shards
/// are handed over after it in a fixed order. Events due at the same time run in the order
/// they were scheduled, and losses come from seeded generators, so the same calls give the
/// same run, byte for byte, on any number of cores. A running digest of every change to every
/// member list, with its time, fingerprints the run without storing it.
public final class SimulatedCluster {
    /// One-way network latency in milliseconds; also the length of a window.
    public let latency: Int64
    /// The probability that a membership message or heartbeat is lost.
    public let lossRate: Double
    /// The virtual time in milliseconds.
    public private(set) var now: Int64 = 0

    /// Fixed, whatever the cores, so that runs repeat. Many more shards than cores: the threads
    /// take the shards of a window as they free up, so one slow thread holds the others back
    /// less, and each Lua state serves a few hundred nodes of a large cluster instead of
    /// thousands. With 32, 10,000 nodes ran about a tenth faster, in wall time and in CPU, than
    /// with 2 or 8 (BENCHMARKS.md).
    static let shardCount = 32
    let directory: SimDirectory
    let shards: [SimShard]
    /// Changes to which nodes are live, made between windows.
    var livenessChanges = 0
    /// Seeds the shards' generators and fault deciders.
    let seed: UInt64
    /// How many fault plans were set: each gets deciders seeded apart.
    var faultPlansSet: UInt64 = 0

    /// - Parameters:
    ///   - latency: one-way latency in milliseconds.
    ///   - lossRate: the fraction of membership messages and heartbeats lost.
    ///   - seed: fixes which messages are lost.
    public init(latency: Int64 = 1, lossRate: Double = 0, seed: UInt64 = 1) {
        precondition(latency >= 1, "the simulated latency must be at least 1 ms")
        self.latency = latency
        self.lossRate = lossRate
        self.seed = seed
        let directory = SimDirectory(shardCount: Self.shardCount)
        self.directory = directory
        shards = (0..<Self.shardCount).map { number in
            SimShard(number: number, directory: directory, latency: latency, lossRate: lossRate, seed: seed &+ UInt64(number) &* 0x9e37_79b9)
        }
    }

    /// Every script failure, in order of time, with the node it happened on.
    public var scriptFailures: [(node: PeerID, error: ScriptError)] {
        shards.flatMap(\.failures).enumerated()
            .sorted { ($0.element.time, $0.element.node, $0.offset) < ($1.element.time, $1.element.node, $1.offset) }
            .map { (directory.ids[Int($0.element.node)], $0.element.error) }
    }

    /// Membership messages delivered so far.
    public var messagesDelivered: Int { shards.reduce(0) { $0 + $1.messagesDelivered } }

    /// Changes with every change to any node's member list, or to which nodes are live.
    public var membershipVersion: Int { shards.reduce(livenessChanges) { $0 + $1.membershipChanges } }

    /// A 64-bit fingerprint of every member-list change so far, with when and where it happened.
    public var digest: UInt64 {
        StableHash.hash64(shards.flatMap { withUnsafeBytes(of: $0.digest.littleEndian, Array.init) })
    }

    /// Adds a node (or starts a killed or departed one again) and runs its script's `init`.
    public func addNode(
        _ id: PeerID, strategy: any OverlayStrategy, config: Value, tags: [String: String] = [:], settings: MembershipSettings = .init()
    ) {
        let (core, directives) = MembershipCore.start(
            selfID: id, strategy: strategy, config: config, tags: tags, settings: settings, now: now
        )
        let index: Int32
        if let existing = directory.index(of: id) {
            index = existing
            directory.status[Int(index)] = .init()
            let shard = shard(of: index)
            shard.nodes[directory.local(index)] = SimShard.Node(core: core, incarnation: shard.nodes[directory.local(index)].incarnation + 1)
        } else {
            index = directory.add(id)
            shard(of: index).nodes.append(SimShard.Node(core: core))
        }
        livenessChanges += 1
        let shard = shard(of: index)
        shard.now = now
        shard.execute(directives, at: index)
        shard.scheduleTimer(for: index)
    }

    /// The Lua state the scripts of `id`'s shard share (`SharedLuaState`): a script loaded into
    /// it runs next to the other nodes of that shard, which runs them all on one thread.
    public func sharedLuaState(for id: PeerID) throws(ScriptError) -> SharedLuaState {
        let shard = shard(of: directory.index(of: id) ?? Int32(directory.ids.count))
        if let state = shard.luaState { return state }
        let state = try SharedLuaState()
        shard.luaState = state
        return state
    }

    /// Asks `node` to join the cluster through `seed`.
    public func join(_ node: PeerID, through seed: PeerID) { deliver(.join(seed), to: node) }

    /// Makes `node` leave gracefully; with `stopAfter`, it then stops that many milliseconds
    /// later, as a real node does once its goodbyes are sent.
    public func leave(_ node: PeerID, stopAfter: Int64? = nil) {
        deliver(.leave(node), to: node)
        if let stopAfter, let index = directory.index(of: node) {
            let shard = shard(of: index)
            shard.queue.push(.stop(index, incarnation: shard.nodes[directory.local(index)].incarnation), at: now + stopAfter)
        }
    }

    /// The members `node` sees.
    public func members(of node: PeerID) -> [PeerID] {
        guard let index = directory.index(of: node) else { return [] }
        return shard(of: index).nodes[directory.local(index)].core.members
    }

    /// Membership messages `node` has sent.
    public func messagesSent(by node: PeerID) -> Int {
        guard let index = directory.index(of: node) else { return 0 }
        return shard(of: index).nodes[directory.local(index)].messagesSent
    }

    /// The ids of the live nodes, sorted.
    public var liveNodes: [PeerID] { zip(directory.ids, directory.status).filter { $0.1.alive }.map(\.0).sorted() }

    /// Runs every event due up to and including `time`, then sets the clock to `time`.
    ///
    /// Each window starts at the earliest pending event and spans one latency; the shards run
    /// it side by side, then the messages between them and the nodes that stopped are dealt
    /// with, in shard order.
    public func run(until time: Int64) {
        let runner = WindowRunner(shards: shards)
        while let start = shards.compactMap(\.queue.nextTime).min(), start <= time {
            let end = min(start + latency - 1, time)
            runner.run(through: end)
            for shard in shards {
                for (at, node, item) in shard.outbox { self.shard(of: node).queue.push(item, at: at) }
                shard.outbox.removeAll(keepingCapacity: true)
            }
            for shard in shards {
                for (at, node) in shard.stopped { kill(directory.ids[Int(node)], at: at) }
                shard.stopped.removeAll()
            }
        }
        now = max(now, time)
    }

    /// Runs for `duration` more milliseconds.
    public func run(for duration: Int64) { run(until: now + duration) }

    func shard(of index: Int32) -> SimShard { shards[directory.shard(of: index)] }

    func deliver(_ event: MembershipEvent, to node: PeerID) {
        guard let index = directory.index(of: node) else { return }
        shard(of: index).queue.push(.event(event, at: index), at: now)
    }
}

/// Runs one window on every shard at once.
///
/// The shards are handed to other threads, which Swift cannot check: it is safe because during
/// `run(through:)` each shard is used by exactly one iteration and touches only its own nodes,
/// queue and outbox, and reads the directory, which nothing writes until every iteration has
/// returned (`concurrentPerform` returns only then, which orders those accesses before the
/// cluster's next ones). A Lua VM thus never runs on two threads at once.
private struct WindowRunner: @unchecked Sendable {
    let shards: [SimShard]

    func run(through end: Int64) {
        DispatchQueue.concurrentPerform(iterations: shards.count) { number in
            shards[number].runWindow(through: end)
        }
    }
}
