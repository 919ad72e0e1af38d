import TrellisLua
import TrellisMembership
import TrellisWire

/// Many membership cores on an in-memory network with a virtual clock.
///
/// It carries out the same directives as the NIO shell: connections come up after a round trip
/// (or fail when the peer is dead or cut off), messages arrive after one latency in the order
/// sent unless lost, heartbeats are answered after a round trip by live, unfrozen peers, and
/// killing a node drops every connection to it. Nothing races: events due at the same time run
/// in the order they were scheduled, and losses come from a seeded generator, so the same calls
/// give the same run.
///
/// Nodes are kept in an array and referred to by index inside; ids are only looked up where
/// directives name a peer. A running digest of every change to every member list, with its
/// time, fingerprints the run without storing it.
public final class SimulatedCluster {
    struct Node {
        var core: MembershipCore
        var alive = true
        /// A frozen node (SIGSTOP) keeps its connections but does nothing and answers nothing.
        var frozen = false
        /// The partition group; nodes talk only within their group.
        var group = 0
        /// Peers (by index) this node holds a membership connection to.
        var links: Set<Int32> = []
        /// When this node's pending timer fires; `nil` when none is pending.
        var timerAt: Int64?
        var heldWhileFrozen: [MembershipEvent] = []
        var messagesSent = 0
        /// How many times a node with this id was added: a pending stop is for one incarnation.
        var incarnation = 0
    }

    private enum Item {
        case event(MembershipEvent, at: Int32)
        case heartbeatAcks(at: Int32, from: [Int32])
        case timer(Int32)
        case stop(Int32, incarnation: Int)
    }

    /// One-way network latency in milliseconds.
    public let latency: Int64
    /// The probability that a membership message or heartbeat is lost.
    public let lossRate: Double
    /// The virtual time in milliseconds.
    public private(set) var now: Int64 = 0
    /// Every script failure, in order, with the node it happened on.
    public private(set) var scriptFailures: [(node: PeerID, error: ScriptError)] = []
    /// Membership messages delivered so far.
    public private(set) var messagesDelivered = 0
    /// Bumped on every change to any node's member list, or to which nodes are live.
    public internal(set) var membershipVersion = 0
    /// A 64-bit fingerprint of every member-list change so far, with when and where it happened.
    public private(set) var digest = StableHash.hash64([UInt8]())

    var nodes: [Node] = []
    private(set) var ids: [PeerID] = []
    private var indices: [PeerID: Int32] = [:]
    private var queue = EventQueue<Item>()
    private var random: SimRandom

    /// - Parameters:
    ///   - latency: one-way latency in milliseconds.
    ///   - lossRate: the fraction of membership messages and heartbeats lost.
    ///   - seed: fixes which messages are lost.
    public init(latency: Int64 = 1, lossRate: Double = 0, seed: UInt64 = 1) {
        self.latency = latency
        self.lossRate = lossRate
        self.random = SimRandom(seed: seed)
    }

    /// Adds a node and runs its script's `init`.
    public func addNode(
        _ id: PeerID, strategy: any OverlayStrategy, config: Value, tags: [String: String] = [:], settings: MembershipSettings = .init()
    ) {
        let (core, directives) = MembershipCore.start(
            selfID: id, strategy: strategy, config: config, tags: tags, settings: settings, now: now
        )
        let index: Int32
        if let existing = indices[id] {
            index = existing
            nodes[Int(index)] = Node(core: core, incarnation: nodes[Int(index)].incarnation + 1)
        } else {
            index = Int32(nodes.count)
            indices[id] = index
            ids.append(id)
            nodes.append(Node(core: core))
        }
        membershipVersion += 1
        execute(directives, at: index)
        scheduleTimer(for: index)
    }

    /// Asks `node` to join the cluster through `seed`.
    public func join(_ node: PeerID, through seed: PeerID) { deliver(.join(seed), to: node) }

    /// Makes `node` leave gracefully; with `stopAfter`, it then stops that many milliseconds
    /// later, as a real node does once its goodbyes are sent.
    public func leave(_ node: PeerID, stopAfter: Int64? = nil) {
        deliver(.leave(node), to: node)
        if let stopAfter, let index = indices[node] {
            queue.push(.stop(index, incarnation: nodes[Int(index)].incarnation), at: now + stopAfter)
        }
    }

    /// The members `node` sees.
    public func members(of node: PeerID) -> [PeerID] {
        guard let index = indices[node] else { return [] }
        return nodes[Int(index)].core.members
    }

    /// Whether `node` exists and has not been killed.
    public func isAlive(_ node: PeerID) -> Bool {
        guard let index = indices[node] else { return false }
        return nodes[Int(index)].alive
    }

    /// Membership messages `node` has sent.
    public func messagesSent(by node: PeerID) -> Int {
        guard let index = indices[node] else { return 0 }
        return nodes[Int(index)].messagesSent
    }

    /// The ids of the live nodes, sorted.
    public var liveNodes: [PeerID] { zip(ids, nodes).filter { $0.1.alive }.map(\.0).sorted() }

    /// Runs every event due up to and including `time`, then sets the clock to `time`.
    public func run(until time: Int64) {
        while let next = queue.nextTime, next <= time {
            guard let (at, item) = queue.pop() else { break }
            now = at
            switch item {
            case .event(let event, let node):
                handle(event, at: node)
            case .heartbeatAcks(let node, let peers):
                for peer in peers where nodes[Int(node)].links.contains(peer) {
                    handle(.heartbeatAck(from: ids[Int(peer)]), at: node)
                }
            case .stop(let node, let incarnation):
                if nodes[Int(node)].incarnation == incarnation { kill(ids[Int(node)]) }
            case .timer(let node):
                guard nodes[Int(node)].timerAt == at else { continue }
                nodes[Int(node)].timerAt = nil
                handle(.timer, at: node)
            }
        }
        now = max(now, time)
    }

    /// Runs for `duration` more milliseconds.
    public func run(for duration: Int64) { run(until: now + duration) }

    func index(of id: PeerID) -> Int32? { indices[id] }

    func deliver(_ event: MembershipEvent, to node: PeerID) {
        guard let index = indices[node] else { return }
        queue.push(.event(event, at: index), at: now)
    }

    func push(_ event: MembershipEvent, to node: Int32, after delay: Int64) {
        queue.push(.event(event, at: node), at: now + delay)
    }

    func scheduleTimer(for index: Int32) {
        guard nodes[Int(index)].alive else { return }
        let due = max(nodes[Int(index)].core.nextDeadline, now + 1)
        if let pending = nodes[Int(index)].timerAt, pending <= due { return }
        nodes[Int(index)].timerAt = due
        queue.push(.timer(index), at: due)
    }

    /// Whether `a` and `b` can talk: both live and in the same partition group.
    func reachable(_ a: Int32, _ b: Int32) -> Bool {
        nodes[Int(b)].alive && nodes[Int(a)].group == nodes[Int(b)].group
    }

    private func handle(_ event: MembershipEvent, at index: Int32) {
        let i = Int(index)
        guard nodes[i].alive else { return }
        if nodes[i].frozen {
            if event != .timer { nodes[i].heldWhileFrozen.append(event) }
            return
        }
        let directives = nodes[i].core.handle(event, now: now)
        execute(directives, at: index)
        scheduleTimer(for: index)
    }

    func execute(_ directives: [MembershipDirective], at index: Int32) {
        var heartbeats: [Int32] = []
        for directive in directives {
            switch directive {
            case .connect(let peer):
                openLink(from: index, to: peer)
            case .disconnect(let peer):
                if let target = indices[peer] { nodes[Int(index)].links.remove(target) }
            case .send(let message, let peer):
                openLink(from: index, to: peer)
                nodes[Int(index)].messagesSent += 1
                guard let target = indices[peer], reachable(index, target), !random.chance(lossRate) else { continue }
                messagesDelivered += 1
                queue.push(.event(.message(message, from: ids[Int(index)]), at: target), at: now + latency)
            case .sendHeartbeat(let peer):
                guard let target = indices[peer], nodes[Int(index)].links.contains(target), reachable(index, target),
                      !nodes[Int(target)].frozen, !random.chance(lossRate) else { continue }
                heartbeats.append(target)
            case .memberUp(let peer):
                recordChange(at: index, peer, up: true)
            case .memberDown(let peer):
                recordChange(at: index, peer, up: false)
            case .scriptFailed(let error):
                scriptFailures.append((ids[Int(index)], error))
            }
        }
        if !heartbeats.isEmpty { queue.push(.heartbeatAcks(at: index, from: heartbeats), at: now + 2 * latency) }
    }

    private func recordChange(at index: Int32, _ peer: PeerID, up: Bool) {
        membershipVersion += 1
        var bytes = withUnsafeBytes(of: digest.littleEndian, Array.init) + withUnsafeBytes(of: now.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: index.littleEndian, Array.init) + [up ? 1 : 0]
        bytes += peer.description.utf8
        digest = StableHash.hash64(bytes)
    }

    private func openLink(from index: Int32, to peer: PeerID) {
        guard peer != ids[Int(index)] else { return }
        guard let target = indices[peer] else {
            push(.connectionDown(peer, reason: "connection refused"), to: index, after: 2 * latency)
            return
        }
        guard !nodes[Int(index)].links.contains(target) else { return }
        if reachable(index, target) {
            nodes[Int(index)].links.insert(target)
            push(.connectionUp(peer), to: index, after: 2 * latency)
        } else {
            let reason = nodes[Int(target)].alive ? "unreachable (partitioned)" : "connection refused"
            push(.connectionDown(peer, reason: reason), to: index, after: 2 * latency)
        }
    }
}
