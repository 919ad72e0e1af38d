import TrellisWire

/// What an overlay's `init` receives as `ctx`.
public struct OverlayContext: Sendable, Equatable {
    /// This node's peer id, `name@host:port`.
    public var selfID: String
    /// The overlay's config table from the topology file or the command line.
    public var config: Value
    /// Milliseconds on the node's monotonic clock (virtual in the simulator).
    public var now: Int64
    /// This node's tags, e.g. `role = "server"`: what it announces to peers in the handshake.
    public var tags: [String: String]

    public init(selfID: String, config: Value, now: Int64, tags: [String: String] = [:]) {
        self.selfID = selfID
        self.config = config
        self.now = now
        self.tags = tags
    }

    /// The `ctx` table as the script sees it; a missing config is an empty table.
    var value: Value {
        .map([
            "self": .string(selfID), "config": config.isNil ? .map([:]) : config, "now": .int(now),
            "tags": .map(tags.mapValues(Value.string)),
        ])
    }
}

/// One message an overlay asked to send on the membership channel.
public struct OverlayMessage: Sendable, Equatable {
    /// The destination peer id, as the script wrote it.
    public var to: String
    /// The message, encoded where it left the script.
    public var message: EncodedValue

    public init(to: String, message: EncodedValue) {
        self.to = to
        self.message = message
    }

    public init(to: String, message: Value) {
        self.init(to: to, message: EncodedValue(message))
    }
}

/// What an overlay callback returned, besides its state (which stays in the VM).
public struct OverlayOutcome: Sendable, Equatable {
    /// The new member list, or `nil` for unchanged.
    public var members: [String]?
    /// Messages to send, in order.
    public var messages: [OverlayMessage]

    public init(members: [String]?, messages: [OverlayMessage]) {
        self.members = members
        self.messages = messages
    }

    /// Nothing changes, nothing is sent.
    public static let unchanged = OverlayOutcome(members: nil, messages: [])
}
