import Foundation
import Logging
import NIOCore
import Trellis
import TrellisLua
import TrellisSimulator
import TrellisTransport
import TrellisWire

/// The nodes of a topology while `trellis up` runs them.
actor RunningCluster {
    enum State: String, Sendable {
        case running, left, killed
        /// A node that a scheduled `add` has not started yet.
        case notStarted = "not started"
    }

    struct Member {
        let spec: NodeSpec
        let id: PeerID
        var node: TrellisNode?
        var state: State
    }

    private let topology: Topology
    private let group: any EventLoopGroup
    private let logger: Logger
    private let cookie: String
    private let overlaySource: String
    private let overlayConfig: Value
    private let placementSource: String?
    /// The TLS settings every node uses, read once; `nil` for plain TCP.
    private let tls: TLSSettings?
    /// The actor scripts' sources, with the nodes that serve each (`nil`: all).
    private let actors: [(file: ScriptFile, nodes: Set<String>?)]
    private var members: [Member]
    private(set) var scheduleDone: Bool
    private let started = ContinuousClock.now
    /// Picks the nodes of `fraction` actions and `add`'s join targets.
    private var random = SeededRandom(seed: 1)

    /// Starts every node of `topology`. Ports are chosen first, so that strings in the overlay
    /// config that name a node can be replaced by that node's id before any script starts.
    static func start(_ topology: Topology, group: any EventLoopGroup, logger: Logger) async throws(TopologyRunError) -> RunningCluster {
        guard topology.nodes.count <= Topology.maximumRealNodes else {
            throw .tooManyNodes(topology.nodes.count, limit: Topology.maximumRealNodes)
        }
        let free = try FreePorts.allocate(topology.nodes.filter { $0.port == 0 }.count, host: topology.host)
        var nextFree = free.makeIterator()
        let ids = topology.nodes.map { spec in
            PeerID(name: spec.name, host: topology.host, port: spec.port == 0 ? nextFree.next()! : spec.port)
        }
        let source: String
        do {
            source = try String(contentsOfFile: topology.overlayPath, encoding: .utf8)
        } catch {
            throw .nodeFailed(topology.nodes.first?.name ?? "?", .cannotReadScript(topology.overlayPath, "\(error)"))
        }
        let tls: TLSSettings?
        do {
            tls = try topology.tls?.settings()
        } catch {
            throw .tls(error)
        }
        let byName = Dictionary(uniqueKeysWithValues: zip(topology.nodes.map(\.name), ids.map(\.description)))
        let placement: String?
        let actors: [(file: ScriptFile, nodes: Set<String>?)]
        do throws(ScriptError) {
            placement = try topology.placementPath.map { path throws(ScriptError) in try ScriptFile(contentsOf: path).source }
            actors = try topology.capabilities.map { spec throws(ScriptError) in (try ScriptFile(contentsOf: spec.actorPath), spec.nodes.map(Set.init)) }
        } catch {
            throw .nodeFailed(topology.nodes.first?.name ?? "?", .script(error))
        }
        let cluster = RunningCluster(
            topology: topology, group: group, logger: logger, source: source, placement: placement, actors: actors, tls: tls,
            config: substituteNodeNames(in: topology.overlayConfig, byName),
            members: zip(topology.nodes, ids).map { Member(spec: $0, id: $1, node: nil, state: .notStarted) }
        )
        for index in ids.indices where topology.nodes[index].addedAtMs == nil { try await cluster.startNode(at: index) }
        return cluster
    }

    private init(
        topology: Topology, group: any EventLoopGroup, logger: Logger, source: String, placement: String?,
        actors: [(file: ScriptFile, nodes: Set<String>?)], tls: TLSSettings?, config: Value, members: [Member]
    ) {
        self.tls = tls
        self.placementSource = placement
        self.actors = actors
        self.topology = topology
        self.group = group
        self.logger = logger
        self.cookie = topology.cookie ?? UUID().uuidString
        self.overlaySource = source
        self.overlayConfig = config
        self.members = members
        self.scheduleDone = topology.schedule.isEmpty
    }

    private func startNode(at index: Int) async throws(TopologyRunError) {
        let member = members[index]
        var nodeLogger = logger
        nodeLogger[metadataKey: "topology"] = "\(topology.name)"
        let configuration = NodeConfiguration(
            name: member.spec.name, host: member.id.host, port: member.id.port, clusterName: topology.cluster,
            cookie: cookie, overlaySource: overlaySource,
            overlayFileName: URL(fileURLWithPath: topology.overlayPath).lastPathComponent,
            overlayConfig: overlayConfig, tags: member.spec.tags, placementSource: placementSource,
            placementFileName: topology.placementPath.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "placement.lua",
            tls: tls, logger: nodeLogger
        )
        let node: TrellisNode
        do {
            node = try await TrellisNode.start(configuration, group: group)
        } catch {
            throw .nodeFailed(member.spec.name, error)
        }
        do {
            for actor in actors where actor.nodes?.contains(member.spec.name) ?? true {
                try await node.serveActor(source: actor.file.source, fileName: actor.file.fileName)
            }
        } catch {
            await node.stop()
            throw .nodeFailed(member.spec.name, error)
        }
        members[index].node = node
        members[index].state = .running
    }

    private func index(of name: String) -> Int? { members.firstIndex { $0.spec.name == name } }

    /// The node named `name`, while it runs.
    func runningNode(named name: String) -> TrellisNode? {
        index(of: name).flatMap { members[$0].state == .running ? members[$0].node : nil }
    }

    /// Carries out the join plan, pausing `delayMs` between joins.
    func runJoinPlan() async {
        for step in topology.join.steps {
            guard let joiner = index(of: step.joiner), let target = index(of: step.target) else { continue }
            await members[joiner].node?.join(members[target].id)
            if topology.join.delayMs > 0 { try? await Task.sleep(for: .milliseconds(topology.join.delayMs)) }
        }
    }

    /// Carries out the schedule, each action at its time after `startedAt`.
    func runSchedule(startedAt: ContinuousClock.Instant) async {
        for action in topology.schedule {
            try? await Task.sleep(until: startedAt + .milliseconds(action.atMs), clock: .continuous)
            if Task.isCancelled { return }
            await perform(action)
        }
        scheduleDone = true
    }

    private var running: [Int] { members.indices.filter { members[$0].state == .running } }

    private func perform(_ action: ScheduledAction) async {
        let byName = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.spec.name, $0) })
        switch action.action {
        case .leave, .kill, .restart:
            for index in action.targets(running: running, index: byName, random: &random) {
                await perform(action.action, at: index)
            }
        case .partition:
            let groups = action.partitionGroups(running: running, index: byName, random: &random)
            for group in groups {
                let inside = Set(group)
                let outside = Set(groups.joined().filter { !inside.contains($0) }.map { members[$0].id })
                for index in group { await members[index].node?.setUnreachable(outside) }
            }
        case .heal:
            for index in running { await members[index].node?.setUnreachable([]) }
        case .swap:
            await swap(action)
        case .faults:
            await injectFaults(action)
        case .add:
            for name in action.nodes {
                guard let index = byName[name] else { continue }
                let targets = running
                do {
                    try await startNode(at: index)
                } catch {
                    logger.error("adding a node failed", metadata: ["node": "\(name)", "error": "\(error)"])
                    continue
                }
                guard let target = action.via.flatMap({ byName[$0] }) ?? (targets.isEmpty ? nil : targets[random.below(targets.count)]) else { continue }
                await members[index].node?.join(members[target].id)
            }
        }
    }

    private func perform(_ action: ScheduledAction.Action, at index: Int) async {
        switch action {
        case .leave:
            guard members[index].state == .running else { return }
            members[index].state = .left
            await members[index].node?.leave()
        case .kill:
            guard members[index].state == .running else { return }
            members[index].state = .killed
            await members[index].node?.stop()
        case .restart:
            guard members[index].state == .killed || members[index].state == .left else { return }
            do {
                try await startNode(at: index)
            } catch {
                logger.error("restart failed", metadata: ["node": "\(members[index].spec.name)", "error": "\(error)"])
                return
            }
            let members = self.members
            if let target = topology.rejoinTarget(for: index, isRunning: { members[$0].state == .running }) {
                await members[index].node?.join(members[target].id)
            }
        case .partition, .heal, .add, .swap, .faults:
            return
        }
    }

    /// What the scheduled swaps did, one line per node, in order.
    private(set) var events: [String] = []

    /// Hot-swaps every running node's overlay to the script at `path` (`trellis up --watch`);
    /// one line per node.
    func swapEverywhere(to path: String) async -> [String] {
        let before = events.count
        let elapsed = Int((ContinuousClock.now - started).components.seconds * 1_000)
        await swap(ScheduledAction(atMs: elapsed, action: .swap, nodes: [], scriptPath: path))
        return Array(events[before...])
    }

    /// Hot-swaps the overlay of the action's nodes (every running node when none is named).
    private func swap(_ action: ScheduledAction) async {
        guard let path = action.scriptPath else { return }
        let file: ScriptFile
        do {
            file = try ScriptFile(contentsOf: path)
        } catch {
            events.append("swap at \(action.atMs) ms: \(error)")
            return
        }
        let byName = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.spec.name, $0) })
        let targets = action.nodes.isEmpty ? running : action.nodes.compactMap { byName[$0] }.filter { members[$0].state == .running }
        for index in targets {
            guard let node = members[index].node else { continue }
            let before = await node.members.count
            do {
                let report = try await node.swapOverlay(source: file.source, fileName: file.fileName)
                events.append("\(members[index].spec.name) at \(action.atMs) ms: \(report.before) -> \(report.after), members \(before) -> \(report.members.count)")
            } catch {
                events.append("\(members[index].spec.name) at \(action.atMs) ms: swap refused, kept \(await node.overlayVersion): \(error)")
            }
        }
    }

    /// Installs the action's fault plan on its nodes (every running node when none is named).
    private func injectFaults(_ action: ScheduledAction) async {
        guard let plan = action.faults else { return }
        let byName = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.spec.name, $0) })
        let targets = action.nodes.isEmpty ? running : action.nodes.compactMap { byName[$0] }.filter { members[$0].state == .running }
        let what = plan.isEmpty ? "no faults" : "faults \(plan.rules.map(\.description))\(plan.script.map { " + \($0.fileName)" } ?? "")"
        for index in targets {
            guard let node = members[index].node else { continue }
            let seen = await node.members.count
            do {
                try await node.injectFaults(plan)
                events.append("\(members[index].spec.name) at \(action.atMs) ms, seeing \(seen) members: \(what)")
            } catch {
                events.append("\(members[index].spec.name) at \(action.atMs) ms, seeing \(seen) members: faults refused: \(error)")
            }
        }
    }

    /// What every node sees now.
    func snapshot() async -> ClusterSnapshot {
        var nodes: [ClusterSnapshot.Node] = []
        for member in members {
            let seen = member.state == .running ? await member.node?.members ?? [] : []
            let errors = await member.node?.scriptErrors ?? 0
            nodes.append(.init(name: member.spec.name, id: member.id, state: member.state, members: seen, scriptErrors: errors))
        }
        return ClusterSnapshot(nodes: nodes)
    }

    /// Stops every node abruptly, those still leaving included: none may outlive the event
    /// loops it runs on.
    func stopAll() async {
        for member in members { await member.node?.stop() }
    }
}

/// Replaces every string in `value` that names a node by that node's id.
func substituteNodeNames(in value: Value, _ ids: [String: String]) -> Value {
    switch value {
    case .string(let text): return .string(ids[text] ?? text)
    case .array(let elements): return .array(elements.map { substituteNodeNames(in: $0, ids) })
    case .map(let entries): return .map(entries.map { .init($0.key, substituteNodeNames(in: $0.value, ids)) })
    default: return value
    }
}

/// The cluster at one instant.
struct ClusterSnapshot: Sendable {
    struct Node: Sendable {
        let name: String
        let id: PeerID
        let state: RunningCluster.State
        let members: [PeerID]
        let scriptErrors: Int
    }

    let nodes: [Node]

    var live: [Node] { nodes.filter { $0.state == .running } }
    var liveCount: Int { live.count }

    var reports: [UpReport.NodeReport] {
        nodes.map { .init(id: $0.id.description, members: $0.members.map(\.description), scriptErrors: $0.scriptErrors, state: $0.state.rawValue) }
    }
}
