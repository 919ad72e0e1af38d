import Foundation
import TrellisLua
import TrellisMembership
import TrellisSimulator
import TrellisWire

/// The outcome of `trellis sim`: the same report as `trellis up`, on virtual time, plus the
/// trace digest that a run with the same file and seed reproduces exactly.
public struct SimReport: Codable, Sendable, Equatable {
    /// Whether every expectation held.
    public var ok: Bool
    /// Virtual milliseconds simulated.
    public var elapsedMs: Int
    public var nodes: [UpReport.NodeReport]
    public var checks: [UpReport.Check]
    /// A 64-bit digest (hex) of every node's members at every step of the run.
    public var digest: String
    /// The seed of the scripts' `math.random`.
    public var seed: UInt64
    /// Membership messages delivered.
    public var messages: Int

    enum CodingKeys: String, CodingKey {
        case ok, nodes, checks, digest, seed, messages
        case elapsedMs = "elapsed_ms"
    }

    /// The report as one line of JSON.
    public func json() -> String { oneLineJSON(self) }

    /// The report as a table for people.
    public func table() -> String {
        UpReport(ok: ok, elapsedMs: elapsedMs, nodes: nodes, checks: checks).table()
            + "\n(virtual time; \(messages) membership messages; seed \(seed); digest \(digest))"
    }
}

/// Runs a topology on the simulator: the same scripts and membership cores as `trellis up`,
/// on an in-memory network with a virtual clock and one thread, so a seed fixes the run.
///
/// Joins, scheduled actions and expectations happen at the same (virtual) times as in `up`.
/// Nodes whose port is 0 get port 7001, 7002, ... in file order, so ids repeat too.
public struct SimRunner {
    /// Virtual milliseconds between two evaluations of the expectations.
    static let step: Int64 = 10

    private let topology: Topology
    private let seed: UInt64
    private let latencyMs: Int64

    public init(topology: Topology, seed: UInt64 = 1, latencyMs: Int64 = 1) {
        self.topology = topology
        self.seed = seed
        self.latencyMs = latencyMs
    }

    /// Runs the topology to the end and returns the report.
    public func run() throws(TopologyRunError) -> SimReport {
        let ids = topology.nodes.enumerated().map { index, spec in
            PeerID(name: spec.name, host: topology.host, port: spec.port == 0 ? 7001 + index : spec.port)
        }
        let byName = Dictionary(uniqueKeysWithValues: zip(topology.nodes.map(\.name), ids))
        let config = substituteNodeNames(in: topology.overlayConfig, byName.mapValues(\.description))
        let source: String
        do {
            source = try String(contentsOfFile: topology.overlayPath, encoding: .utf8)
        } catch {
            throw .nodeFailed(topology.nodes.first?.name ?? "?", .cannotReadScript(topology.overlayPath, "\(error)"))
        }
        let fileName = URL(fileURLWithPath: topology.overlayPath).lastPathComponent
        let cluster = SimulatedCluster<OverlayScript>(latency: latencyMs)
        var states: [RunningCluster.State] = []
        var starts = 0
        func start(_ index: Int) throws(TopologyRunError) {
            starts += 1
            let script: OverlayScript
            do {
                script = try OverlayScript(source: source, fileName: fileName, seed: seed &* 1_000_003 &+ UInt64(starts))
            } catch {
                throw .nodeFailed(topology.nodes[index].name, .script(error))
            }
            cluster.addNode(ids[index], strategy: script, config: config, tags: topology.nodes[index].tags)
        }
        for index in ids.indices {
            try start(index)
            states.append(.running)
        }

        var timeline = Timeline(topology)
        var checker = ExpectationChecker(expectations: topology.expectations)
        var digest = StableHash.hash64([UInt8]())
        var now: Int64 = 0
        while true {
            for event in timeline.due(at: now) {
                switch event {
                case .join(let joiner, let target):
                    guard let j = byName[joiner], let t = byName[target] else { continue }
                    cluster.join(j, through: t)
                case .action(.leave, let index) where states[index] == .running:
                    states[index] = .left
                    cluster.leave(ids[index])
                case .action(.kill, let index) where states[index] == .running:
                    states[index] = .killed
                    cluster.kill(ids[index])
                case .action(.restart, let index) where states[index] != .running:
                    try start(index)
                    states[index] = .running
                    if let target = topology.rejoinTarget(for: index, isRunning: { states[$0] == .running }) {
                        cluster.join(ids[index], through: ids[target])
                    }
                case .action:
                    continue
                }
            }
            cluster.run(until: now)
            let snapshot = self.snapshot(cluster, ids: ids, states: states)
            digest = Self.fold(digest, now: now, snapshot)
            checker.evaluate(snapshot, now: Int(now), scheduleDone: timeline.scheduleDone)
            if checker.allDecided || now >= Int64(topology.timeoutMs) { break }
            now += Self.step
        }
        let final = snapshot(cluster, ids: ids, states: states)
        let checks = checker.finish(now: Int(now))
        return SimReport(
            ok: checks.allSatisfy(\.ok), elapsedMs: Int(now), nodes: final.reports, checks: checks,
            digest: String(digest, radix: 16), seed: seed, messages: cluster.messagesDelivered
        )
    }

    private func snapshot(_ cluster: SimulatedCluster<OverlayScript>, ids: [PeerID], states: [RunningCluster.State]) -> ClusterSnapshot {
        var errors: [PeerID: Int] = [:]
        for failure in cluster.scriptFailures { errors[failure.node, default: 0] += 1 }
        return ClusterSnapshot(nodes: ids.indices.map { index in
            let id = ids[index]
            return .init(
                name: topology.nodes[index].name, id: id, state: states[index],
                members: states[index] == .running ? cluster.members(of: id) : [], scriptErrors: errors[id] ?? 0
            )
        })
    }

    /// Folds one step of the run into the digest.
    private static func fold(_ digest: UInt64, now: Int64, _ snapshot: ClusterSnapshot) -> UInt64 {
        var bytes = withUnsafeBytes(of: digest.littleEndian, Array.init) + withUnsafeBytes(of: now.littleEndian, Array.init)
        for node in snapshot.nodes {
            bytes += Array(node.id.description.utf8) + [0]
            for member in node.members { bytes += Array(member.description.utf8) + [1] }
        }
        return StableHash.hash64(bytes)
    }
}

/// The join plan and the schedule as one list of events in virtual time.
private struct Timeline {
    enum Event {
        case join(joiner: String, target: String)
        case action(ScheduledAction.Action, node: Int)
    }

    private var events: [(at: Int64, event: Event)]
    private var next = 0
    private let lastAction: Int64?

    init(_ topology: Topology) {
        let index = Dictionary(uniqueKeysWithValues: topology.nodes.enumerated().map { ($1.name, $0) })
        var events: [(at: Int64, event: Event)] = topology.join.steps.enumerated().map { step, join in
            (Int64(step * topology.join.delayMs), .join(joiner: join.joiner, target: join.target))
        }
        for action in topology.schedule {
            for name in action.nodes {
                if let node = index[name] { events.append((Int64(action.atMs), .action(action.action, node: node))) }
            }
        }
        self.events = events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        self.lastAction = topology.schedule.last.map { Int64($0.atMs) }
    }

    /// The events due by `now` not handed out yet, in order.
    mutating func due(at now: Int64) -> [Event] {
        var due: [Event] = []
        while next < events.count, events[next].at <= now {
            due.append(events[next].event)
            next += 1
        }
        return due
    }

    /// Whether every scheduled action has been handed out.
    var scheduleDone: Bool { next == events.count || lastAction == nil }
}
