import TrellisLua
import TrellisMembership
import TrellisWire

/// Many membership cores on an in-memory network with a virtual clock.
///
/// It carries out the same directives as the NIO shell: connections come up after one
/// network latency (or fail when the peer is dead), messages arrive after one latency in the
/// order sent, heartbeats are answered after a round trip by live, unfrozen peers, and killing
/// a node drops every connection to it. Nothing races: events due at the same time run in the
/// order they were scheduled, so the same calls give the same run.
public final class SimulatedCluster<Strategy: OverlayStrategy> {
    /// One node of the simulation.
    public struct Node {
        public var core: MembershipCore<Strategy>
        public var alive = true
        /// A frozen node (SIGSTOP) keeps its connections but does nothing and answers nothing.
        public var frozen = false
        /// Peers this node holds a membership connection to.
        public var links: Set<PeerID> = []
        fileprivate var timerGeneration = 0
        fileprivate var heldWhileFrozen: [MembershipEvent] = []
    }

    private enum Item {
        case event(MembershipEvent, at: PeerID)
        case timer(PeerID, generation: Int)
    }

    /// One-way network latency in milliseconds.
    public let latency: Int64
    /// The virtual time in milliseconds.
    public private(set) var now: Int64 = 0
    /// The nodes, by id.
    public private(set) var nodes: [PeerID: Node] = [:]
    /// Every script failure, in order, with the node it happened on.
    public private(set) var scriptFailures: [(node: PeerID, error: ScriptError)] = []
    /// Membership messages delivered so far.
    public private(set) var messagesDelivered = 0

    private var queue = EventQueue<Item>()

    public init(latency: Int64 = 1) {
        self.latency = latency
    }

    /// Adds a node and runs its script's `init`.
    public func addNode(
        _ id: PeerID, strategy: Strategy, config: Value, tags: [String: String] = [:], settings: MembershipSettings = .init()
    ) {
        let (core, directives) = MembershipCore.start(
            selfID: id, strategy: strategy, config: config, tags: tags, settings: settings, now: now
        )
        nodes[id] = Node(core: core)
        execute(directives, at: id)
        scheduleTimer(for: id)
    }

    /// Asks `node` to join the cluster through `seed`.
    public func join(_ node: PeerID, through seed: PeerID) { deliver(.join(seed), to: node) }

    /// Makes `node` leave gracefully.
    public func leave(_ node: PeerID) { deliver(.leave(node), to: node) }

    /// Kills `node`: it stops at once and every connection to it is lost.
    public func kill(_ node: PeerID) {
        guard nodes[node]?.alive == true else { return }
        nodes[node]?.alive = false
        for (id, other) in nodes where other.alive && other.links.contains(node) {
            nodes[id]?.links.remove(node)
            queue.push(.event(.connectionDown(node, reason: "connection lost"), at: id), at: now + latency)
        }
    }

    /// Freezes (`true`) or thaws (`false`) `node`, like SIGSTOP and SIGCONT.
    public func setFrozen(_ node: PeerID, _ frozen: Bool) {
        nodes[node]?.frozen = frozen
        guard !frozen, let held = nodes[node]?.heldWhileFrozen else { return }
        nodes[node]?.heldWhileFrozen = []
        for event in held { deliver(event, to: node) }
        scheduleTimer(for: node)
    }

    /// The members `node` sees.
    public func members(of node: PeerID) -> [PeerID] { nodes[node]?.core.members ?? [] }

    /// The ids of the live nodes, sorted.
    public var liveNodes: [PeerID] { nodes.filter { $0.value.alive }.keys.sorted() }

    /// Runs every event due up to and including `time`, then sets the clock to `time`.
    public func run(until time: Int64) {
        while let next = queue.nextTime, next <= time {
            guard let (at, item) = queue.pop() else { break }
            now = at
            switch item {
            case .event(let event, let node):
                handle(event, at: node)
            case .timer(let node, let generation):
                guard nodes[node]?.timerGeneration == generation else { continue }
                handle(.timer, at: node)
            }
        }
        now = max(now, time)
    }

    /// Runs for `duration` more milliseconds.
    public func run(for duration: Int64) { run(until: now + duration) }

    private func deliver(_ event: MembershipEvent, to node: PeerID) {
        queue.push(.event(event, at: node), at: now)
    }

    private func handle(_ event: MembershipEvent, at id: PeerID) {
        guard var node = nodes[id], node.alive else { return }
        if node.frozen {
            if event != .timer { nodes[id]?.heldWhileFrozen.append(event) }
            return
        }
        let directives = node.core.handle(event, now: now)
        nodes[id] = node
        execute(directives, at: id)
        scheduleTimer(for: id)
    }

    private func scheduleTimer(for id: PeerID) {
        guard var node = nodes[id], node.alive else { return }
        node.timerGeneration += 1
        nodes[id] = node
        queue.push(.timer(id, generation: node.timerGeneration), at: max(node.core.nextDeadline, now + 1))
    }

    private func execute(_ directives: [MembershipDirective], at id: PeerID) {
        for directive in directives {
            switch directive {
            case .connect(let peer):
                openLink(from: id, to: peer)
            case .disconnect(let peer):
                nodes[id]?.links.remove(peer)
            case .send(let message, let peer):
                openLink(from: id, to: peer)
                guard nodes[peer]?.alive == true else { continue }
                messagesDelivered += 1
                queue.push(.event(.message(message, from: id), at: peer), at: now + latency)
            case .sendHeartbeat(let peer):
                guard nodes[id]?.links.contains(peer) == true, nodes[peer]?.alive == true, nodes[peer]?.frozen == false else {
                    continue
                }
                queue.push(.event(.heartbeatAck(from: peer), at: id), at: now + 2 * latency)
            case .memberUp, .memberDown:
                continue
            case .scriptFailed(let error):
                scriptFailures.append((id, error))
            }
        }
    }

    private func openLink(from id: PeerID, to peer: PeerID) {
        guard peer != id, nodes[id]?.links.contains(peer) == false else { return }
        if nodes[peer]?.alive == true {
            nodes[id]?.links.insert(peer)
            queue.push(.event(.connectionUp(peer), at: id), at: now + 2 * latency)
        } else {
            queue.push(.event(.connectionDown(peer, reason: "connection refused"), at: id), at: now + 2 * latency)
        }
    }
}
