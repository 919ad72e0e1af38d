import Foundation
import Logging
import NIOCore
import NIOPosix
import Trellis
import TrellisLua
import TrellisWire

/// Why `trellis up` could not run a topology at all (as opposed to an expectation failing).
public enum TopologyRunError: Error, Sendable, CustomStringConvertible {
    case noFreePort(String, String)
    case nodeFailed(String, NodeError)
    case tooManyNodes(Int, limit: Int)
    case faultsRefused(ScriptError)
    case tls(NodeSettingsError)

    public var description: String {
        switch self {
        case .noFreePort(let host, let why):
            return "cannot find a free port on \(host): \(why); set nodes.base_port to a free range"
        case .nodeFailed(let name, let error):
            return "node \(name) did not start: \(error)"
        case .faultsRefused(let error):
            return "the fault plan was refused: \(error); `trellis check` shows the same report"
        case .tls(let error):
            return "\(error)"
        case .tooManyNodes(let count, let limit):
            return "the topology has \(count) nodes; `trellis up` starts at most \(limit) in one process (use `trellis sim` for more)"
        }
    }
}

/// How a run is going, reported to the caller about ten times a second.
public struct UpProgress: Sendable {
    public var elapsedMs: Int
    /// Live nodes whose member count matches the first `members` expectation in force.
    public var converged: Int
    public var live: Int
    public var checksPassed: Int
    public var checksTotal: Int
}

extension UpRunner {
    /// Swaps every running node to the script at `path` each time the file changes.
    static func watch(_ path: String, cluster: RunningCluster, onEvent: @Sendable (String) -> Void) async {
        func modified() -> Date? { (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date }
        var last = modified()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(300))
            let now = modified()
            guard let now, now != last else { continue }
            last = now
            for event in await cluster.swapEverywhere(to: path) { onEvent(event) }
        }
    }
}

/// The reports of the workloads that have finished, by position.
private actor WorkloadsFinished {
    private(set) var checks: [Int: UpReport.Check] = [:]
    var count: Int { checks.count }

    func record(_ index: Int, _ check: UpReport.Check) { checks[index] = check }
}

/// Runs a topology in this process: starts its nodes (each with its own Lua VM and TCP
/// listener), carries out the join plan and the schedule, and checks the expectations until
/// they all hold or fail, or the topology's time runs out.
public final class UpRunner: Sendable {
    private let topology: Topology
    private let group: any EventLoopGroup
    private let logger: Logger

    public init(topology: Topology, group: any EventLoopGroup, logger: Logger = Logger(label: "trellis")) {
        self.topology = topology
        self.group = group
        self.logger = logger
    }

    /// Runs the topology and returns the report; every node is stopped on return.
    ///
    /// With `watch`, the run lasts until the topology's timeout, and whenever the overlay
    /// script's file changes every running node hot-swaps to it; `onEvent` gets each node's
    /// outcome as it happens. `graph`, when given, gets every node's state and members with each
    /// progress report (what the live view draws).
    public func run(
        watch: Bool = false, onEvent: @escaping @Sendable (String) -> Void = { _ in },
        progress: @escaping @Sendable (UpProgress) -> Void = { _ in },
        graph: (@Sendable (_ nodes: [UpReport.NodeReport], _ elapsedMs: Int) -> Void)? = nil
    ) async throws(TopologyRunError) -> UpReport {
        let cluster = try await RunningCluster.start(topology, group: group, logger: logger)
        let started = ContinuousClock.now
        func elapsed() -> Int {
            let duration = ContinuousClock.now - started
            return Int(duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
        }

        await cluster.runJoinPlan()
        let schedule = Task { await cluster.runSchedule(startedAt: started) }
        let workloads = topology.workloads.map { workload in
            Task { await WorkloadRunner(workload: workload, cluster: cluster, startedAt: started).run() }
        }
        let watcher = watch ? Task { await Self.watch(topology.overlayPath, cluster: cluster, onEvent: onEvent) } : nil
        let finished = WorkloadsFinished()
        for (index, workload) in workloads.enumerated() {
            Task { await finished.record(index, await workload.value) }
        }
        var checker = ExpectationChecker(expectations: topology.expectations)
        while true {
            let now = elapsed()
            let snapshot = await cluster.snapshot()
            checker.evaluate(snapshot, now: now, scheduleDone: await cluster.scheduleDone)
            progress(UpProgress(
                elapsedMs: now, converged: checker.converged(snapshot), live: snapshot.liveCount,
                checksPassed: checker.passedCount, checksTotal: topology.expectations.count
            ))
            graph?(snapshot.reports, now)
            if !watch, checker.allDecided, await finished.count == workloads.count { break }
            if now >= topology.timeoutMs { break }
            try? await Task.sleep(for: .milliseconds(50))
        }
        schedule.cancel()
        watcher?.cancel()
        let final = await cluster.snapshot()
        var checks = checker.finish(now: elapsed())
        let done = await finished.checks
        for (index, workload) in topology.workloads.enumerated() {
            workloads[index].cancel()
            checks.append(done[index] ?? UpReport.Check(
                name: workload.name, ok: false, detail: "did not finish within the topology's timeout"))
        }
        let report = UpReport(
            ok: checks.allSatisfy(\.ok), elapsedMs: elapsed(), nodes: final.reports, checks: checks,
            events: await cluster.events
        )
        await cluster.stopAll()
        return report
    }
}
