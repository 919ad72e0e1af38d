import TrellisLua
import TrellisWire

/// One fault-injection rule: what to do to the messages it selects, and how often.
///
/// A rule selects messages by sender (`from`), receiver (`to`) and `channel`; a selector left
/// out matches everything. Peers are named by their full id (`n1@127.0.0.1:7001`) or by name
/// alone (`n1`). Each selected message is affected with `probability`.
public struct FaultRule: Sendable, Equatable, CustomStringConvertible {
    /// What the rule does to a message it hits.
    public enum Action: Sendable, Equatable {
        /// Loses the message.
        case drop
        /// Holds the message `milliseconds`, plus a uniform extra of up to `jitter`.
        case delay(milliseconds: Int, jitter: Int)
        /// Delivers the message twice.
        case duplicate
        /// Holds the message a uniform 0 to `window` milliseconds, so that later messages
        /// overtake it.
        case reorder(window: Int)
    }

    public var action: Action
    /// Senders the rule applies to; empty: every sender.
    public var from: [String]
    /// Receivers the rule applies to; empty: every receiver.
    public var to: [String]
    /// The channel the rule applies to (`membership`, `default`, ...); nil: every channel.
    public var channel: String?
    /// The chance, from 0 to 1, that a selected message is hit.
    public var probability: Double

    public init(_ action: Action, from: [String] = [], to: [String] = [], channel: String? = nil, probability: Double = 1) {
        self.action = action
        self.from = from
        self.to = to
        self.channel = channel
        self.probability = probability
    }

    /// Whether the rule selects a message from `sender` to `receiver` on `channel`.
    public func selects(from sender: PeerID, to receiver: PeerID, channel: String) -> Bool {
        (self.channel == nil || self.channel == channel) && Self.matches(from, sender) && Self.matches(to, receiver)
    }

    private static func matches(_ selectors: [String], _ peer: PeerID) -> Bool {
        selectors.isEmpty || selectors.contains { $0 == peer.description || $0 == peer.name }
    }

    public var description: String {
        var parts = [actionDescription]
        if !from.isEmpty { parts.append("from \(from.joined(separator: ","))") }
        if !to.isEmpty { parts.append("to \(to.joined(separator: ","))") }
        if let channel { parts.append("on \(channel)") }
        if probability < 1 { parts.append("p=\(probability)") }
        return parts.joined(separator: " ")
    }

    private var actionDescription: String {
        switch action {
        case .drop: "drop"
        case .delay(let milliseconds, let jitter): jitter > 0 ? "delay \(milliseconds)+\(jitter)ms" : "delay \(milliseconds)ms"
        case .duplicate: "duplicate"
        case .reorder(let window): "reorder within \(window)ms"
        }
    }
}

/// Why a fault rule or plan was refused.
public struct FaultRuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

extension FaultRule {
    /// Reads a rule from its table form, as topology files, the admin interface and
    /// `trellis fault` give it:
    /// `{ action = "drop"|"delay"|"duplicate"|"reorder", from = {...}, to = {...},
    /// channel = "...", probability = 0.1, delay_ms = 100, jitter_ms = 20, window_ms = 50 }`.
    public init(value: Value) throws(FaultRuleError) {
        guard case .map = value else { throw FaultRuleError(description: "a fault rule must be a table, not \(value)") }
        let action: Action
        switch value["action"]?.stringValue {
        case "drop": action = .drop
        case "duplicate": action = .duplicate
        case "delay":
            guard let milliseconds = try Self.milliseconds(value, "delay_ms") else {
                throw FaultRuleError(description: "a delay rule needs delay_ms (milliseconds, e.g. delay_ms = 200)")
            }
            action = .delay(milliseconds: milliseconds, jitter: try Self.milliseconds(value, "jitter_ms") ?? 0)
        case "reorder":
            action = .reorder(window: try Self.milliseconds(value, "window_ms") ?? 50)
        case let other:
            throw FaultRuleError(description: "unknown fault action \(other.map { "'\($0)'" } ?? "(none)"): use drop, delay, duplicate or reorder")
        }
        let probability: Double
        switch value["probability"] {
        case nil: probability = 1
        case .int(let number)?: probability = Double(number)
        case .float(let number)?: probability = number
        case let other?: throw FaultRuleError(description: "probability must be a number from 0 to 1, not \(other)")
        }
        guard (0...1).contains(probability) else {
            throw FaultRuleError(description: "probability must be from 0 to 1, not \(probability)")
        }
        let channel = value["channel"]
        guard channel == nil || channel?.stringValue != nil else {
            throw FaultRuleError(description: "channel must be a channel name such as \"default\"")
        }
        self.init(
            action, from: try Self.peers(value, "from"), to: try Self.peers(value, "to"), channel: channel?.stringValue,
            probability: probability)
    }

    /// The rule in its table form, the inverse of `init(value:)`.
    public var value: Value {
        var entries: [(String, Value)] = []
        switch action {
        case .drop: entries.append(("action", "drop"))
        case .duplicate: entries.append(("action", "duplicate"))
        case .delay(let milliseconds, let jitter):
            entries += [("action", "delay"), ("delay_ms", .int(Int64(milliseconds))), ("jitter_ms", .int(Int64(jitter)))]
        case .reorder(let window): entries += [("action", "reorder"), ("window_ms", .int(Int64(window)))]
        }
        if !from.isEmpty { entries.append(("from", .array(from.map(Value.string)))) }
        if !to.isEmpty { entries.append(("to", .array(to.map(Value.string)))) }
        if let channel { entries.append(("channel", .string(channel))) }
        entries.append(("probability", .float(probability)))
        return .map(entries.map { Value.MapEntry(.string($0.0), $0.1) })
    }

    private static func milliseconds(_ value: Value, _ key: String) throws(FaultRuleError) -> Int? {
        guard let field = value[key] else { return nil }
        guard let number = field.intValue, (0...Int64(FaultScript.maxDelay)).contains(number) else {
            throw FaultRuleError(description: "\(key) must be a whole number of milliseconds from 0 to \(FaultScript.maxDelay), not \(field)")
        }
        return Int(number)
    }

    private static func peers(_ value: Value, _ key: String) throws(FaultRuleError) -> [String] {
        switch value[key] {
        case nil: return []
        case .string(let peer)?: return [peer]
        case .array(let peers)?:
            return try peers.map { (peer) throws(FaultRuleError) -> String in
                guard let name = peer.stringValue else { throw FaultRuleError(description: "\(key) must list node names or ids, not \(peer)") }
                return name
            }
        case let other?: throw FaultRuleError(description: "\(key) must be a node name or a list of them, not \(other)")
        }
    }
}
