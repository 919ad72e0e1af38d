import Dispatch
import Metrics
import NIOConcurrencyHelpers
import TrellisLua
import TrellisMembership
import TrellisWire

/// A node's metrics, every series labelled `node` with its id. They go to
/// `NodeConfiguration.metricsFactory`, or to the process-wide `MetricsSystem` (a no-op until
/// the application bootstraps a backend). The transport adds its own per channel (see
/// `TransportConfig.metricsFactory`).
///
/// - `trellis_members{node}`: the overlay's member count, this node included.
/// - `trellis_member_changes_total{node, change}`: peers entering (`up`) or leaving (`down`)
///   the member list.
/// - `trellis_failure_detections_total{node, reason}`: peers reported down to the overlay's
///   `on_down`, by `connection_lost` (closed or refused) or `heartbeat_timeout`.
/// - `trellis_script_callback_duration_seconds{node, kind, callback}`: how long script callbacks
///   run; `kind` is `overlay`, `placement` or `actor`, `callback` the Lua function
///   (`on_message`, `handle_call`, ...; `table` for a placement table).
/// - `trellis_script_errors_total{node, kind, callback}`: callbacks that failed (runtime error,
///   budget, memory, bad return), including the fault script's (`kind="fault"`).
/// - `trellis_hot_swaps_total{node, kind, outcome}`: swaps of `overlay`, `placement` or `actor`
///   scripts, `ok` or `refused`.
/// - `trellis_fault_verdicts_total{node, verdict}`: messages judged while a fault plan is in
///   force: `deliver`, `drop`, `delay` or `duplicate`.
/// - `trellis_process_calls_total{node, kind, route}`: calls and casts (`kind`) reaching this
///   node's router: `served` here, `forwarded` to the owner, or `unserved` (no such capability);
///   `rerouted` counts calls that could not be sent to their owner and went to the shard's
///   next owner.
/// - `trellis_process_handoff_replaced_live_total{node}`: handed-over processes that found a
///   live process with their id here (activated by a call that came first, which happens
///   while nodes' views disagree) and replaced it.
final class NodeMetrics: Sendable {
    let factory: any MetricsFactory
    private let node: String
    private let members: Gauge
    private let memberUps: Counter
    private let memberDowns: Counter
    private let connectionLost: Counter
    private let heartbeatTimeouts: Counter
    private let verdicts: [Counter]
    private let processCalls: [Counter]
    private let handoffsReplacingLive: Counter
    /// The core's failure counts already added to the counters.
    private let counted = NIOLockedValueBox(DownReports())
    private let scripts = NIOLockedValueBox<[String: ScriptMeter]>([:])

    init(factory: any MetricsFactory, node: PeerID) {
        self.factory = factory
        self.node = node.description
        let label = [("node", self.node)]
        members = Gauge(label: "trellis_members", dimensions: label, factory: factory)
        func counter(_ name: String, _ extra: (String, String)...) -> Counter {
            Counter(label: name, dimensions: label + extra, factory: factory)
        }
        memberUps = counter("trellis_member_changes_total", ("change", "up"))
        memberDowns = counter("trellis_member_changes_total", ("change", "down"))
        connectionLost = counter("trellis_failure_detections_total", ("reason", "connection_lost"))
        heartbeatTimeouts = counter("trellis_failure_detections_total", ("reason", "heartbeat_timeout"))
        verdicts = ["deliver", "drop", "delay", "duplicate"].map { counter("trellis_fault_verdicts_total", ("verdict", $0)) }
        processCalls = ["call", "cast"].flatMap { kind in
            Route.names.map { counter("trellis_process_calls_total", ("kind", kind), ("route", $0)) }
        }
        handoffsReplacingLive = counter("trellis_process_handoff_replaced_live_total")
    }

    /// Records what a batch of membership directives changed: member count and changes,
    /// overlay failures, and the failure detections the core counted since the last batch.
    func observe(_ directives: [MembershipDirective], memberCount: Int, downReports: DownReports) {
        for directive in directives {
            switch directive {
            case .memberUp: memberUps.increment()
            case .memberDown: memberDowns.increment()
            case .scriptFailed(let error): scriptFailed("overlay", error.callback)
            case .connect, .disconnect, .send, .sendHeartbeat: break
            }
        }
        members.record(memberCount)
        let (lost, silent) = counted.withLockedValue { counted in
            defer { counted = downReports }
            return (downReports.connectionLost - counted.connectionLost, downReports.heartbeatTimeout - counted.heartbeatTimeout)
        }
        if lost > 0 { connectionLost.increment(by: Int64(lost)) }
        if silent > 0 { heartbeatTimeouts.increment(by: Int64(silent)) }
    }

    /// The duration and error series of one callback of one kind of script; look it up once
    /// and keep it where the callback runs often.
    func script(_ kind: String, _ callback: String) -> ScriptMeter {
        scripts.withLockedValue { meters in
            if let meter = meters["\(kind)/\(callback)"] { return meter }
            let labels = [("node", node), ("kind", kind), ("callback", callback)]
            let meter = ScriptMeter(
                duration: Metrics.Timer(label: "trellis_script_callback_duration_seconds", dimensions: labels, factory: factory),
                errors: Counter(label: "trellis_script_errors_total", dimensions: labels, factory: factory))
            meters["\(kind)/\(callback)"] = meter
            return meter
        }
    }

    /// Counts a failed callback of a `kind` script.
    func scriptFailed(_ kind: String, _ callback: String) {
        script(kind, callback).errors.increment()
    }

    /// Counts a hot swap of a `kind` script that took effect (`ok`) or was refused.
    func swapped(_ kind: String, ok: Bool) {
        let labels = [("node", node), ("kind", kind), ("outcome", ok ? "ok" : "refused")]
        Counter(label: "trellis_hot_swaps_total", dimensions: labels, factory: factory).increment()
    }

    /// Counts one fault-injection verdict.
    func judged(_ verdict: FaultVerdict) {
        switch verdict {
        case .deliver: verdicts[0].increment()
        case .drop: verdicts[1].increment()
        case .delay: verdicts[2].increment()
        case .duplicate: verdicts[3].increment()
        }
    }

    /// Where a call or cast reaching the router went.
    enum Route: Int {
        case served, forwarded, unserved, rerouted

        static let names = ["served", "forwarded", "unserved", "rerouted"]
    }

    /// Counts a call (`isCall`) or cast that reached the router and went `route`.
    func routed(isCall: Bool, _ route: Route) {
        processCalls[(isCall ? 0 : Route.names.count) + route.rawValue].increment()
    }

    /// Counts a handed-over process that replaced a live process with its id.
    func handoffReplacedLive() {
        handoffsReplacingLive.increment()
    }
}

/// The duration and error series of one script callback.
struct ScriptMeter: Sendable {
    let duration: Metrics.Timer
    let errors: Counter

    /// Runs `body`, recording how long it took.
    func time<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { duration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds &- start)) }
        return try body()
    }
}
