import Foundation
import TrellisLua
import TrellisMembership
import TrellisSimulator
import TrellisWire

/// How far a simulation has got, for a live view.
public struct SimProgress: Sendable {
    /// Virtual time simulated so far, and the most the run may take.
    public var virtualMs: Int
    public var timeoutMs: Int
    /// Nodes running now.
    public var live: Int
    /// Membership messages delivered so far.
    public var messages: Int
    public var checksPassed: Int
    public var checksTotal: Int
}

/// Runs a topology on the simulator: the same scripts and membership cores as `trellis up`,
/// on an in-memory network with a virtual clock, where nothing races, so a seed fixes the run.
///
/// Joins, scheduled actions and expectations happen at the same (virtual) times as in `up`.
/// Expectations are evaluated every 10 virtual milliseconds (100 above 1,000 nodes), and only
/// recomputed when some member list changed. Nodes whose port is 0 get port 7001, 7002, ... in
/// file order, so ids repeat too. Random choices (`fraction`, `add` targets, flood sources)
/// come from the seed.
public struct SimRunner {

    private let topology: Topology
    private let seed: UInt64
    private let latencyMs: Int64
    private let lossRate: Double

    public init(topology: Topology, seed: UInt64 = 1, latencyMs: Int64 = 1, lossRate: Double = 0) {
        self.topology = topology
        self.seed = seed
        self.latencyMs = latencyMs
        self.lossRate = lossRate
    }

    /// Runs the topology to the end and returns the report; `progress` hears how far it got
    /// after every step of the expectations' cadence.
    public func run(progress: (SimProgress) -> Void = { _ in }) throws(TopologyRunError) -> SimReport {
        let ids = topology.nodes.enumerated().map { index, spec in
            PeerID(name: spec.name, host: topology.host, port: spec.port == 0 ? 7001 + index : spec.port)
        }
        let byName = Dictionary(uniqueKeysWithValues: topology.nodes.enumerated().map { ($1.name, $0) })
        let config = substituteNodeNames(in: topology.overlayConfig, byName.mapValues { ids[$0].description })
        let source: String
        do {
            source = try String(contentsOfFile: topology.overlayPath, encoding: .utf8)
        } catch {
            throw .nodeFailed(topology.nodes.first?.name ?? "?", .cannotReadScript(topology.overlayPath, "\(error)"))
        }
        let fileName = URL(fileURLWithPath: topology.overlayPath).lastPathComponent
        let cluster = SimulatedCluster(latency: latencyMs, lossRate: lossRate, seed: seed)
        var random = SeededRandom(seed: seed)
        var states = [RunningCluster.State](repeating: .notStarted, count: ids.count)
        var starts = 0
        func start(_ index: Int) throws(TopologyRunError) {
            starts += 1
            let script: OverlayScript
            do {
                script = try OverlayScript(
                    source: source, fileName: fileName, seed: seed &* 1_000_003 &+ UInt64(starts),
                    sharing: try cluster.sharedLuaState(for: ids[index])
                )
            } catch {
                throw .nodeFailed(topology.nodes[index].name, .script(error))
            }
            cluster.addNode(ids[index], strategy: script, config: config, tags: topology.nodes[index].tags)
            states[index] = .running
        }
        for index in ids.indices where topology.nodes[index].addedAtMs == nil { try start(index) }
        func running() -> [Int] { states.indices.filter { states[$0] == .running } }

        func perform(_ action: ScheduledAction) throws(TopologyRunError) {
            switch action.action {
            case .leave, .kill, .restart:
                for index in action.targets(running: running(), index: byName, random: &random) {
                    switch (action.action, states[index]) {
                    case (.leave, .running):
                        states[index] = .left
                        cluster.leave(ids[index], stopAfter: 50)
                    case (.kill, .running):
                        states[index] = .killed
                        cluster.kill(ids[index])
                    case (.restart, .killed), (.restart, .left):
                        try start(index)
                        if let target = topology.rejoinTarget(for: index, isRunning: { states[$0] == .running }) {
                            cluster.join(ids[index], through: ids[target])
                        }
                    default:
                        continue
                    }
                }
            case .partition:
                cluster.partition(action.partitionGroups(running: running(), index: byName, random: &random).map { $0.map { ids[$0] } })
            case .heal:
                cluster.heal()
            case .swap:
                break
            case .faults:
                let receivers = action.nodes.isEmpty ? running().map { ids[$0] } : action.nodes.compactMap { byName[$0] }.map { ids[$0] }
                do {
                    try cluster.setFaults(action.faults ?? .none, on: receivers)
                } catch {
                    throw .faultsRefused(error)
                }
            case .add:
                for name in action.nodes {
                    guard let index = byName[name], states[index] == .notStarted else { continue }
                    let targets = running()
                    try start(index)
                    if let target = action.via.flatMap({ byName[$0] }) ?? (targets.isEmpty ? nil : targets[random.below(targets.count)]) {
                        cluster.join(ids[index], through: ids[target])
                    }
                }
            }
        }

        var timeline = SimTimeline(topology)
        var checker = ExpectationChecker(expectations: topology.expectations)
        var reports: [OverlayReport] = []
        let step: Int64 = ids.count > 1_000 ? 100 : 10
        var now: Int64 = 0
        // Taken only while an expectation is pending: a snapshot reads every node's members.
        var snapshot: ClusterSnapshot?
        var seenVersion = cluster.membershipVersion
        while true {
            for (at, event) in timeline.due(at: now) {
                cluster.run(until: at)
                switch event {
                case .join(let joiner, let target):
                    guard let j = byName[joiner], let t = byName[target] else { continue }
                    cluster.join(ids[j], through: ids[t])
                case .action(let action):
                    try perform(action)
                case .report(let point):
                    reports.append(.measure(cluster, at: Int(at), floods: point.broadcasts, random: &random))
                }
            }
            cluster.run(until: now)
            if !checker.allDecided {
                let changed = snapshot == nil || cluster.membershipVersion != seenVersion
                if changed {
                    snapshot = self.snapshot(cluster, ids: ids, states: states)
                    seenVersion = cluster.membershipVersion
                }
                if let snapshot {
                    checker.evaluate(snapshot, now: Int(now), scheduleDone: timeline.scheduleDone(at: now), changed: changed)
                }
            }
            progress(SimProgress(
                virtualMs: Int(now), timeoutMs: topology.timeoutMs, live: states.reduce(0) { $1 == .running ? $0 + 1 : $0 },
                messages: cluster.messagesDelivered, checksPassed: checker.passedCount, checksTotal: topology.expectations.count))
            if checker.allDecided && timeline.nextAt == nil || now >= Int64(topology.timeoutMs) { break }
            now += step
        }
        let checks = checker.finish(now: Int(now))
        let counts = cluster.faultCounts
        let injected = topology.schedule.contains { $0.action == .faults }
        return SimReport(
            ok: checks.allSatisfy(\.ok), elapsedMs: Int(now), nodes: self.snapshot(cluster, ids: ids, states: states).reports,
            checks: checks, digest: String(cluster.digest, radix: 16), seed: seed, messages: cluster.messagesDelivered,
            reports: reports,
            faults: injected ? SimReport.Faults(dropped: counts.dropped, delayed: counts.delayed, duplicated: counts.duplicated) : nil
        )
    }

    private func snapshot(_ cluster: SimulatedCluster, ids: [PeerID], states: [RunningCluster.State]) -> ClusterSnapshot {
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
}
