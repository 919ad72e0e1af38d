import TrellisLua
import TrellisMembership
import TrellisPlacement
import TrellisWire

/// An overlay script whose callbacks are timed into `trellis_script_callback_duration_seconds`
/// (`kind="overlay"`). Failures are counted by the node, which also sees the core's checks of
/// what the script returned.
final class MeteredOverlay: OverlayStrategy {
    private let script: any OverlayStrategy
    private let meters: [String: ScriptMeter]

    init(_ script: any OverlayStrategy, metrics: NodeMetrics) {
        self.script = script
        let callbacks = OverlayScript.requiredCallbacks + OverlayScript.optionalCallbacks
        meters = Dictionary(uniqueKeysWithValues: callbacks.map { ($0, metrics.script("overlay", $0)) })
    }

    private func timed<Result>(_ callback: String, _ body: () throws(ScriptError) -> Result) throws(ScriptError) -> Result {
        guard let meter = meters[callback] else { return try body() }
        return try meter.time(body)
    }

    var fileName: String { script.fileName }
    var tickInterval: Int? { script.tickInterval }
    var version: Int64 { script.version }

    func start(_ ctx: OverlayContext) throws(ScriptError) -> [String]? {
        try timed("init") { () throws(ScriptError) in try script.start(ctx) }
    }

    func join(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("join") { () throws(ScriptError) in try script.join(peer, now: now) }
    }

    func leave(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("leave") { () throws(ScriptError) in try script.leave(peer, now: now) }
    }

    func receive(_ message: EncodedValue, from peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("on_message") { () throws(ScriptError) in try script.receive(message, from: peer, now: now) }
    }

    func tick(now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("on_tick") { () throws(ScriptError) in try script.tick(now: now) }
    }

    func connectionUp(_ peer: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("on_up") { () throws(ScriptError) in try script.connectionUp(peer, now: now) }
    }

    func connectionDown(_ peer: String, reason: String, now: Int64) throws(ScriptError) -> OverlayOutcome {
        try timed("on_down") { () throws(ScriptError) in try script.connectionDown(peer, reason: reason, now: now) }
    }

    func exportState() throws(ScriptError) -> Value { try script.exportState() }

    func migrate(from oldState: Value, oldVersion: Int64, context: OverlayContext) throws(ScriptError) -> [String]? {
        try timed("migrate") { () throws(ScriptError) in
            try script.migrate(from: oldState, oldVersion: oldVersion, context: context)
        }
    }
}

/// A placement script whose tables are timed into `trellis_script_callback_duration_seconds`
/// (`kind="placement"`, `callback="table"`: one capability's whole table). Failures are
/// counted by the node, which reports them.
final class MeteredPlacement: PlacementPolicy {
    private let policy: LuaPlacement
    private let meter: ScriptMeter

    /// `policy` timed when it is a script; the built-in policy runs no script and is kept as is.
    static func wrapping(_ policy: any PlacementPolicy, metrics: NodeMetrics) -> any PlacementPolicy {
        guard let script = policy as? LuaPlacement else { return policy }
        return MeteredPlacement(policy: script, meter: metrics.script("placement", "table"))
    }

    private init(policy: LuaPlacement, meter: ScriptMeter) {
        self.policy = policy
        self.meter = meter
    }

    var name: String { policy.name }

    func table(capability: String, nodes: [PlacementNode], shardCount: Int) throws(ScriptError) -> ShardTable {
        try meter.time { () throws(ScriptError) in try policy.table(capability: capability, nodes: nodes, shardCount: shardCount) }
    }
}
