import TrellisWire

/// `trellis check`: loads a script in the sandbox and checks it against the contract, without
/// a node.
///
/// The kind of script is told by its fields: `handle_call` makes an actor, `owner` or `assign`
/// a placement policy, `decide` a fault script, anything else is checked as an overlay. An
/// overlay's `init` is run once with a sample context, a placement policy computes one table
/// for three sample nodes, and a fault script judges a sample message and heartbeat, so
/// errors in them show up here rather than on a running node.
public enum ScriptChecker {
    /// The kinds of script the contract defines.
    public enum Kind: String, Sendable {
        case overlay, placement, actor, faults
    }

    /// A one-line summary of a sound script, or the first problem found.
    public static func check(source: String, fileName: String, limits: ScriptLimits = .init()) -> Result<String, ScriptError> {
        do {
            let vm = try LuaVM(fileName: fileName, limits: limits, seed: 1)
            let exports = try vm.loadScript(source)
            switch kind(of: exports) {
            case .overlay:
                return .success(try checkOverlay(OverlayScript(loaded: vm, exports: exports)))
            case .placement:
                return .success(try checkPlacement(PlacementScript(loaded: vm, exports: exports)))
            case .actor:
                return .success(checkActor(try ActorScript(loaded: vm, exports: exports)))
            case .faults:
                return .success(try checkFaults(FaultScript(loaded: vm, exports: exports)))
            }
        } catch {
            return .failure(error)
        }
    }

    /// The kind of script a table is, by the fields it defines.
    public static func kind(of exports: ScriptExports) -> Kind {
        if exports.functions["handle_call"] != nil { return .actor }
        if exports.functions["owner"] != nil || exports.functions["assign"] != nil { return .placement }
        if exports.functions["decide"] != nil { return .faults }
        return .overlay
    }

    private static func checkOverlay(_ overlay: OverlayScript) throws(ScriptError) -> String {
        let sample = OverlayContext(selfID: "check@127.0.0.1:7100", config: .map([:]), now: 0)
        _ = try overlay.start(sample)
        let defined = (OverlayScript.requiredCallbacks + OverlayScript.optionalCallbacks).filter { overlay.callbacks[$0] != nil }
        let tick = overlay.tickInterval.map { ", tick \($0) ms" } ?? ""
        return "overlay '\(overlay.name)' version \(overlay.version)\(tick): \(defined.joined(separator: ", ")); init ran"
    }

    /// Runs the policy once, on three sample nodes (one of them without tags) and 64 shards.
    private static func checkPlacement(_ policy: PlacementScript) throws(ScriptError) -> String {
        let samples = [
            PlacementNode(id: PeerID(name: "a", host: "127.0.0.1", port: 7101), capabilities: ["sample"], tags: ["region": "eu"]),
            PlacementNode(id: PeerID(name: "b", host: "127.0.0.1", port: 7102), capabilities: ["sample", "other"], tags: ["region": "us"]),
            PlacementNode(id: PeerID(name: "c", host: "127.0.0.1", port: 7103), capabilities: ["sample"]),
        ]
        _ = try policy.table(capability: "sample", nodes: samples, shardCount: 64)
        let provides = ["owner", "assign"].filter { policy.callbacks[$0] != nil }
        return "placement policy '\(policy.name)' version \(policy.version): \(provides.joined(separator: ", "))"
    }

    /// Judges one sample application message and one heartbeat answer.
    private static func checkFaults(_ script: FaultScript) throws(ScriptError) -> String {
        let message = try script.decide(from: "a@127.0.0.1:7101", to: "b@127.0.0.1:7102", channel: "default", message: .map(["n": 1]))
        let heartbeat = try script.decide(from: "a@127.0.0.1:7101", to: "b@127.0.0.1:7102", channel: "membership", message: nil)
        return "fault script '\(script.name)' version \(script.version): a sample message: \(message), a heartbeat: \(heartbeat)"
    }

    private static func checkActor(_ actor: ActorScript) -> String {
        let defined = ["init", "handle_call"] + ActorScript.optionalCallbacks.filter { actor.callbacks[$0] != nil }
        return "actor '\(actor.name)' version \(actor.version) for capability '\(actor.capability)': \(defined.joined(separator: ", "))"
    }
}
