import TrellisFaults
import TrellisLua
import TrellisMembership
import TrellisWire

/// What every shard may read about every node while a window runs; only the cluster changes
/// it, and only between windows.
final class SimDirectory {
    struct Status {
        var alive = true
        /// A frozen node (SIGSTOP) keeps its connections but does nothing and answers nothing.
        var frozen = false
        /// The partition group; nodes talk only within their group.
        var group = 0
    }

    private(set) var ids: [PeerID] = []
    /// Node indices by id serial (-1 for none): every message and heartbeat looks its target
    /// up, and reading an array is cheaper than hashing the id.
    private var indexBySerial: [Int32] = []
    /// Node indices of ids without a serial.
    private var indexByID: [PeerID: Int32] = [:]
    var status: [Status] = []
    let shardCount: Int

    init(shardCount: Int) { self.shardCount = shardCount }

    /// The index of the node with `id`, if there is one.
    func index(of id: PeerID) -> Int32? {
        guard let serial = id.serial else { return indexByID[id] }
        guard serial < indexBySerial.count, indexBySerial[serial] >= 0 else { return nil }
        return indexBySerial[serial]
    }

    /// Adds a node with `id`; returns its index.
    func add(_ id: PeerID) -> Int32 {
        let index = Int32(ids.count)
        ids.append(id)
        status.append(.init())
        if let serial = id.serial {
            if serial >= indexBySerial.count { indexBySerial += repeatElement(-1, count: serial + 1 - indexBySerial.count) }
            indexBySerial[serial] = index
        } else {
            indexByID[id] = index
        }
        return index
    }

    func shard(of index: Int32) -> Int { Int(index) % shardCount }
    func local(_ index: Int32) -> Int { Int(index) / shardCount }

    /// Whether `a` and `b` can talk: `b` is live and both are in the same partition group.
    func reachable(_ a: Int32, _ b: Int32) -> Bool {
        status[Int(b)].alive && status[Int(a)].group == status[Int(b)].group
    }
}

/// A share of the simulated nodes with its own event queue, run by one thread at a time.
///
/// A node belongs to shard `index % shardCount`. Within a window of one network latency a
/// shard only touches its own nodes: a message to another shard's node arrives one latency
/// later, after the window, so it waits in `outbox` until the cluster hands it over. Shards
/// therefore run side by side, and the run is the same whichever runs first.
final class SimShard {
    struct Node {
        var core: MembershipCore
        /// Peers (global indices) this node holds a membership connection to: a dozen or so,
        /// looked up by every heartbeat and its answer.
        var links = SortedArray<Int32>()
        /// When this node's pending timer fires; `nil` when none is pending.
        var timerAt: Int64?
        var heldWhileFrozen: [MembershipEvent] = []
        var messagesSent = 0
        /// How many times a node with this id was added: a pending stop is for one incarnation.
        var incarnation = 0
    }

    enum Item {
        case event(MembershipEvent, at: Int32)
        case heartbeatAcks(at: Int32, from: [Int32])
        case timer(Int32)
        case stop(Int32, incarnation: Int)
    }

    /// A script failure, with when and where it happened.
    struct Failure {
        let time: Int64
        let node: Int32
        let error: ScriptError
    }

    /// This shard's number: it holds the nodes whose index modulo the shard count is this.
    let number: Int
    let directory: SimDirectory
    let latency: Int64
    let lossRate: Double
    var nodes: [Node] = []
    var queue = EventQueue<Item>()
    /// Messages for other shards' nodes, in the order sent: (arrival time, node, item).
    var outbox: [(at: Int64, node: Int32, item: Item)] = []
    /// Nodes that stopped (`.stop`) during the window, with when: the cluster kills them after
    /// it, since killing reaches into every shard.
    var stopped: [(at: Int64, node: Int32)] = []
    var now: Int64 = 0
    var messagesDelivered = 0
    var membershipChanges = 0
    /// The Lua state this shard's nodes' scripts share, once one is made.
    var luaState: SharedLuaState?
    var digest = StableHash.hash64([UInt8]())
    var failures: [Failure] = []
    /// The fault plans in force, by receiving node (global index); nodes installed together
    /// share one decider. This shard's own deciders: a fault script's VM never leaves it.
    var faults: [Int32: FaultDecider] = [:]
    /// Every decider this shard made, in force or replaced, for the counts.
    var faultDeciders: [FaultDecider] = []
    private var random: SeededRandom

    init(number: Int, directory: SimDirectory, latency: Int64, lossRate: Double, seed: UInt64) {
        self.number = number
        self.directory = directory
        self.latency = latency
        self.lossRate = lossRate
        self.random = SeededRandom(seed: seed)
    }

    /// Runs this shard's events due up to and including `end`.
    func runWindow(through end: Int64) {
        while let next = queue.nextTime, next <= end {
            guard let (at, item) = queue.pop() else { break }
            now = at
            switch item {
            case .event(let event, let node):
                handle(event, at: node)
            case .heartbeatAcks(let node, let peers):
                for peer in peers where nodes[directory.local(node)].links.contains(peer) {
                    handle(.heartbeatAck(from: directory.ids[Int(peer)]), at: node)
                }
            case .stop(let node, let incarnation):
                if nodes[directory.local(node)].incarnation == incarnation { stopped.append((at, node)) }
            case .timer(let node):
                guard nodes[directory.local(node)].timerAt == at else { continue }
                nodes[directory.local(node)].timerAt = nil
                handle(.timer, at: node)
            }
        }
    }

    /// Queues `item` for `node`, here or, for another shard's node, in the outbox.
    func send(_ item: Item, to node: Int32, at time: Int64) {
        if directory.shard(of: node) == number {
            queue.push(item, at: time)
        } else {
            outbox.append((time, node, item))
        }
    }

    func scheduleTimer(for index: Int32) {
        let local = directory.local(index)
        guard directory.status[Int(index)].alive else { return }
        let due = max(nodes[local].core.nextDeadline, now + 1)
        if let pending = nodes[local].timerAt, pending <= due { return }
        nodes[local].timerAt = due
        queue.push(.timer(index), at: due)
    }

    private func handle(_ event: MembershipEvent, at index: Int32) {
        let status = directory.status[Int(index)]
        guard status.alive else { return }
        let local = directory.local(index)
        if status.frozen {
            if event != .timer { nodes[local].heldWhileFrozen.append(event) }
            return
        }
        let directives = nodes[local].core.handle(event, now: now)
        execute(directives, at: index)
        scheduleTimer(for: index)
    }

    func execute(_ directives: [MembershipDirective], at index: Int32) {
        let local = directory.local(index)
        var heartbeats: [Int32] = []
        for directive in directives {
            switch directive {
            case .connect(let peer):
                openLink(from: index, to: peer)
            case .disconnect(let peer):
                if let target = directory.index(of: peer) { nodes[local].links.remove(target) }
            case .send(let message, let peer):
                openLink(from: index, to: peer)
                nodes[local].messagesSent += 1
                guard let target = directory.index(of: peer), directory.reachable(index, target), !random.chance(lossRate) else { continue }
                let sender = directory.ids[Int(index)]
                let item = Item.event(.message(message, from: sender), at: target)
                switch faults[target]?.verdict(from: sender, to: peer, channel: "membership", message: { message.value }) ?? .deliver {
                case .deliver:
                    messagesDelivered += 1
                    send(item, to: target, at: now + latency)
                case .drop:
                    continue
                case .duplicate:
                    messagesDelivered += 2
                    send(item, to: target, at: now + latency)
                    send(item, to: target, at: now + latency)
                case .delay(let milliseconds):
                    messagesDelivered += 1
                    send(item, to: target, at: now + latency + Int64(milliseconds))
                }
            case .sendHeartbeat(let peer):
                guard let target = directory.index(of: peer), nodes[local].links.contains(target), directory.reachable(index, target),
                      !directory.status[Int(target)].frozen, !random.chance(lossRate) else { continue }
                // As on a real node, the heartbeat's answer is judged where it arrives: here.
                let answer = faults[index]?.verdict(from: peer, to: directory.ids[Int(index)], channel: "membership") { nil } ?? .deliver
                switch answer {
                case .deliver, .duplicate: heartbeats.append(target)
                case .drop: continue
                case .delay(let milliseconds): queue.push(.heartbeatAcks(at: index, from: [target]), at: now + 2 * latency + Int64(milliseconds))
                }
            case .memberUp(let peer):
                recordChange(at: index, peer, up: true)
            case .memberDown(let peer):
                recordChange(at: index, peer, up: false)
            case .scriptFailed(let error):
                failures.append(Failure(time: now, node: index, error: error))
            }
        }
        if !heartbeats.isEmpty { queue.push(.heartbeatAcks(at: index, from: heartbeats), at: now + 2 * latency) }
    }

    private func recordChange(at index: Int32, _ peer: PeerID, up: Bool) {
        membershipChanges += 1
        var bytes = withUnsafeBytes(of: digest.littleEndian, Array.init) + withUnsafeBytes(of: now.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: index.littleEndian, Array.init) + [up ? 1 : 0]
        bytes += peer.description.utf8
        digest = StableHash.hash64(bytes)
    }

    private func openLink(from index: Int32, to peer: PeerID) {
        guard peer != directory.ids[Int(index)] else { return }
        guard let target = directory.index(of: peer) else {
            queue.push(.event(.connectionDown(peer, reason: "connection refused"), at: index), at: now + 2 * latency)
            return
        }
        let local = directory.local(index)
        guard !nodes[local].links.contains(target) else { return }
        if directory.reachable(index, target) {
            nodes[local].links.insert(target)
            queue.push(.event(.connectionUp(peer), at: index), at: now + 2 * latency)
        } else {
            let reason = directory.status[Int(target)].alive ? "unreachable (partitioned)" : "connection refused"
            queue.push(.event(.connectionDown(peer, reason: reason), at: index), at: now + 2 * latency)
        }
    }
}
