import TrellisLua
import TrellisWire

/// The faults a node injects: rules, tried in order, and optionally a fault script that
/// decides the messages no rule hit. The empty plan injects nothing.
public struct FaultPlan: Sendable, Equatable {
    /// A fault script's source and file name.
    public struct Script: Sendable, Equatable {
        public var source: String
        public var fileName: String

        public init(source: String, fileName: String) {
            self.source = source
            self.fileName = fileName
        }
    }

    public var rules: [FaultRule]
    public var script: Script?

    public init(rules: [FaultRule] = [], script: Script? = nil) {
        self.rules = rules
        self.script = script
    }

    /// No faults.
    public static let none = FaultPlan()

    /// Whether the plan injects nothing.
    public var isEmpty: Bool { rules.isEmpty && script == nil }

    /// Reads a plan from its table form: `{ rules = { rule, ... }, script = "<lua source>",
    /// file = "name.lua" }`, every field optional. See `FaultRule(value:)` for a rule.
    public init(value: Value) throws(FaultRuleError) {
        guard case .map = value else { throw FaultRuleError(description: "a fault plan must be a table with `rules` and/or `script`") }
        var rules: [FaultRule] = []
        switch value["rules"] {
        case nil: break
        case .array(let entries)?:
            for (index, entry) in entries.enumerated() {
                do {
                    rules.append(try FaultRule(value: entry))
                } catch {
                    throw FaultRuleError(description: "rule \(index + 1): \(error.description)")
                }
            }
        case let other?: throw FaultRuleError(description: "`rules` must be a list of rules, not \(other)")
        }
        var script: Script?
        if let source = value["script"] {
            guard let text = source.stringValue else { throw FaultRuleError(description: "`script` must be the Lua source of a fault script") }
            script = Script(source: text, fileName: value["file"]?.stringValue ?? "faults.lua")
        }
        self.init(rules: rules, script: script)
    }

    /// The plan in its table form, the inverse of `init(value:)`.
    public var value: Value {
        var entries: [Value.MapEntry] = [Value.MapEntry("rules", .array(rules.map(\.value)))]
        if let script {
            entries += [Value.MapEntry("script", .string(script.source)), Value.MapEntry("file", .string(script.fileName))]
        }
        return .map(entries)
    }
}

/// How many messages a fault plan has affected.
public struct FaultCounts: Sendable, Equatable {
    public var delivered = 0
    public var dropped = 0
    public var delayed = 0
    public var duplicated = 0
    /// Calls of the fault script that failed (those messages were delivered).
    public var scriptErrors = 0

    public init() {}

    /// The counts as a table, for status reports.
    public var value: Value {
        .map([
            "delivered": .int(Int64(delivered)), "dropped": .int(Int64(dropped)), "delayed": .int(Int64(delayed)),
            "duplicated": .int(Int64(duplicated)), "script_errors": .int(Int64(scriptErrors)),
        ])
    }
}

/// Applies a `FaultPlan` to messages one at a time: the first rule that selects a message and
/// wins its probability roll decides; otherwise the script decides, or the message is
/// delivered. Choices come from a seeded generator, so a run with the same seed and the same
/// messages makes the same choices. A script that fails lets the message through and is
/// counted, so a broken fault script cannot take a node down.
///
/// Not `Sendable`: it owns the fault script's VM. The node keeps it behind a lock; the
/// simulator keeps one per shard.
public final class FaultDecider {
    public let plan: FaultPlan
    /// What the plan has done so far.
    public private(set) var counts = FaultCounts()
    /// The fault script's latest failure, if any.
    public private(set) var lastScriptError: ScriptError?
    private var random: SeededRandom
    private let script: FaultScript?

    /// Loads the plan's script, if any. Throws when it does not load or breaks the contract.
    public init(plan: FaultPlan, seed: UInt64, limits: ScriptLimits = .init()) throws(ScriptError) {
        self.plan = plan
        self.random = SeededRandom(seed: seed)
        self.script = try plan.script.map { (script) throws(ScriptError) in
            try FaultScript(source: script.source, fileName: script.fileName, limits: limits, seed: seed)
        }
    }

    /// The fate of a message from `sender` to `receiver` on `channel`. `message` is asked for
    /// only when the script needs it (nil for a heartbeat).
    public func verdict(from sender: PeerID, to receiver: PeerID, channel: String, message: () -> Value?) -> FaultVerdict {
        let verdict = choose(from: sender, to: receiver, channel: channel, message: message)
        switch verdict {
        case .deliver: counts.delivered += 1
        case .drop: counts.dropped += 1
        case .delay: counts.delayed += 1
        case .duplicate: counts.duplicated += 1
        }
        return verdict
    }

    private static func held(_ milliseconds: Int) -> FaultVerdict {
        milliseconds > 0 ? .delay(milliseconds: milliseconds) : .deliver
    }

    private func choose(from sender: PeerID, to receiver: PeerID, channel: String, message: () -> Value?) -> FaultVerdict {
        for rule in plan.rules where rule.selects(from: sender, to: receiver, channel: channel) {
            guard random.chance(rule.probability) else { continue }
            switch rule.action {
            case .drop: return .drop
            case .duplicate: return .duplicate
            case .delay(let milliseconds, let jitter):
                return Self.held(milliseconds + (jitter > 0 ? random.below(jitter + 1) : 0))
            case .reorder(let window):
                return Self.held(window > 0 ? random.below(window + 1) : 0)
            }
        }
        guard let script else { return .deliver }
        do {
            return try script.decide(from: sender.description, to: receiver.description, channel: channel, message: message())
        } catch {
            counts.scriptErrors += 1
            lastScriptError = error
            return .deliver
        }
    }
}
