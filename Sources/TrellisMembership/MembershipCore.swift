import TrellisLua
import TrellisWire

/// The membership driver: a deterministic state machine that runs an overlay script.
///
/// Events go in with the current time, directives come out; nothing here touches a socket, a
/// clock or a thread. The NIO shell (`TrellisNode`) and the simulator both feed it events and
/// carry out its directives, so the same script behaves the same way in both.
///
/// The core keeps the overlay's member list (self is always a member), turns changes of that
/// list into connect/disconnect and member up/down directives, pings connected peers and runs
/// the failure detector, and calls the script's `on_tick` on its period. A script callback that
/// fails leaves the previous members in force and yields a `.scriptFailed` directive.
public struct MembershipCore {
    /// This node.
    public let selfID: PeerID
    /// The overlay script.
    public private(set) var strategy: any OverlayStrategy
    /// Timing of heartbeats, failure detection and ticks.
    public let settings: MembershipSettings

    /// The current members, sorted; always includes `selfID`.
    public private(set) var members: [PeerID]
    private var memberSet: Set<PeerID>
    /// Peers whose membership connection is up.
    public var connected: Set<PeerID> { connectedPeers.set }
    private var connectedPeers = ConnectedPeers()
    /// How many script callbacks have failed.
    public private(set) var scriptErrors = 0
    /// How many times a peer was reported down to the overlay (`on_down`), by cause.
    public private(set) var downReports = DownReports()

    private var detector: FailureDetector
    /// Peers this node sent membership messages to, with when it last did. A non-member among
    /// them has a connection only for those messages: it is reported down if it cannot be
    /// reached, and its connection is closed once idle.
    private var contacted: [PeerID: Int64] = [:]
    /// Until this time no connection can turn idle and no contact be forgotten, so timers skip
    /// `closeIdleConnections`' walk through every connection and contact.
    private var nextIdleCheckAt: Int64 = .min
    private var nextTickAt: Int64
    private var nextHeartbeatAt: Int64
    /// The member list the script returned last, as it returned it: most callbacks return the
    /// same list again, which then needs no parsing.
    private var lastReturned: [String] = []

    /// Creates the core and runs the script's `init` with `config` and this node's `tags`. The
    /// directives connect to the initial members, if the script returned any.
    public static func start(
        selfID: PeerID, strategy: any OverlayStrategy, config: Value, tags: [String: String] = [:],
        settings: MembershipSettings = .init(), now: Int64
    ) -> (MembershipCore, [MembershipDirective]) {
        var core = MembershipCore(selfID: selfID, strategy: strategy, settings: settings, now: now)
        var directives: [MembershipDirective] = []
        let context = OverlayContext(selfID: selfID.description, config: config, now: now, tags: tags)
        do {
            let initial = try strategy.start(context)
            core.apply(members: initial, from: "init", into: &directives)
        } catch {
            core.scriptErrors += 1
            directives.append(.scriptFailed(error))
        }
        return (core, directives)
    }

    private init(selfID: PeerID, strategy: any OverlayStrategy, settings: MembershipSettings, now: Int64) {
        self.selfID = selfID
        self.strategy = strategy
        self.settings = settings
        self.members = [selfID]
        self.memberSet = [selfID]
        self.detector = FailureDetector(timeout: settings.failureTimeout)
        self.nextTickAt = now + (strategy.tickInterval.map(Int64.init) ?? settings.defaultTickInterval)
        self.nextHeartbeatAt = now + settings.heartbeatInterval
    }

    /// Replaces the overlay script on the running node, as one transaction: the old script's
    /// state is read as a value, the replacement's `migrate` (or `init`) runs on it, and only
    /// then does the replacement take over. On any failure the old script keeps running with
    /// its state and members, and the error is thrown.
    ///
    /// The directives apply the members `migrate` returned: peers that stay members keep their
    /// connections, only newcomers are connected and leavers disconnected.
    public mutating func swap(
        to replacement: any OverlayStrategy, config: Value, tags: [String: String] = [:], now: Int64
    ) throws(ScriptError) -> [MembershipDirective] {
        let oldState = try strategy.exportState()
        let context = OverlayContext(selfID: selfID.description, config: config, now: now, tags: tags)
        let members = try replacement.migrate(from: oldState, oldVersion: strategy.version, context: context)
        // Unlike other callbacks, whose bad ids are reported and skipped, a migrate that names
        // an invalid peer refuses the whole swap: the old script stays with its members.
        for text in members ?? [] {
            do {
                _ = try PeerID(parsing: text)
            } catch {
                throw ScriptError(
                    .badReturn, file: replacement.fileName, callback: "migrate", message: "members holds \(error.description)",
                    hint: "return the peer ids of the old state's members (name@host:port), or ctx.self")
            }
        }
        // The state migrate kept must itself be a value, or no later swap could carry it on.
        do {
            _ = try replacement.exportState()
        } catch {
            throw ScriptError(
                .badReturn, file: replacement.fileName, callback: "migrate",
                message: "the new state cannot be carried to a later swap: \(error.message)",
                hint: "keep only values in the state (no functions, no cycles, nesting and size within the limits)")
        }
        strategy = replacement
        lastReturned = []
        nextTickAt = now + tickInterval
        var directives: [MembershipDirective] = []
        apply(members: members, from: "migrate", into: &directives)
        return directives
    }

    /// The tick period in force, in milliseconds.
    public var tickInterval: Int64 { strategy.tickInterval.map(Int64.init) ?? settings.defaultTickInterval }

    /// The earliest time at which a `.timer` event has work to do.
    public var nextDeadline: Int64 { min(nextTickAt, nextHeartbeatAt) }

    /// Handles one event at time `now` and returns what the node must do.
    public mutating func handle(_ event: MembershipEvent, now: Int64) -> [MembershipDirective] {
        var directives: [MembershipDirective] = []
        switch event {
        case .join(let peer):
            run("join", now: now, into: &directives) { s throws(ScriptError) in try s.join(peer.description, now: now) }
        case .leave(let peer):
            run("leave", now: now, into: &directives) { s throws(ScriptError) in try s.leave(peer.description, now: now) }
        case .message(let message, let from):
            detector.heard(from: from, now: now)
            run("on_message", now: now, into: &directives) { s throws(ScriptError) in
                try s.receive(message, from: from.description, now: now)
            }
        case .connectionUp(let peer):
            connectedPeers.insert(peer)
            if !memberSet.contains(peer) {
                nextIdleCheckAt = min(nextIdleCheckAt, contacted[peer].map { $0 + settings.idleConnectionTimeout } ?? now)
            }
            detector.watch(peer, now: now)
            run("on_up", now: now, into: &directives) { s throws(ScriptError) in try s.connectionUp(peer.description, now: now) }
        case .connectionDown(let peer, let reason):
            reportDown(peer, reason: reason, now: now, into: &directives)
        case .heartbeatAck(let peer):
            if detector.heard(from: peer, now: now) {
                run("on_up", now: now, into: &directives) { s throws(ScriptError) in
                    try s.connectionUp(peer.description, now: now)
                }
            }
        case .timer:
            handleTimer(now: now, into: &directives)
        }
        return directives
    }

    private mutating func handleTimer(now: Int64, into directives: inout [MembershipDirective]) {
        for peer in detector.expired(now: now) {
            downReports.heartbeatTimeout += 1
            run("on_down", now: now, into: &directives) { s throws(ScriptError) in
                try s.connectionDown(peer.description, reason: "heartbeat timeout", now: now)
            }
        }
        closeIdleConnections(now: now, into: &directives)
        if now >= nextHeartbeatAt {
            for peer in connectedPeers.inOrder {
                directives.append(.sendHeartbeat(to: peer))
            }
            nextHeartbeatAt = Self.nextOccurrence(of: nextHeartbeatAt, every: settings.heartbeatInterval, after: now)
        }
        if now >= nextTickAt {
            nextTickAt = Self.nextOccurrence(of: nextTickAt, every: tickInterval, after: now)
            run("on_tick", now: now, into: &directives) { s throws(ScriptError) in try s.tick(now: now) }
        }
    }

    /// Drops connections to non-members not sent to for `idleConnectionTimeout`, and forgets
    /// such peers that never connected.
    private mutating func closeIdleConnections(now: Int64, into directives: inout [MembershipDirective]) {
        guard now >= nextIdleCheckAt else { return }
        let idleSince = now - settings.idleConnectionTimeout
        // Runs on every timer: a loop that allocates only when some peer is idle.
        var idle: [PeerID] = []
        for peer in connectedPeers.inOrder where !memberSet.contains(peer) && contacted[peer, default: .min] <= idleSince {
            idle.append(peer)
        }
        for peer in idle {
            directives.append(.disconnect(peer))
            connectedPeers.remove(peer)
            detector.unwatch(peer)
            contacted[peer] = nil
        }
        // The non-members still contacted are either forgotten now (idle, and not connected:
        // a connected one was just closed) or set the next check. A member's contact ends with
        // its membership (`apply`); a later contact (`run`) or connection (`connectionUp`) can
        // only bring the check forward.
        var forgotten: [PeerID] = []
        nextIdleCheckAt = .max
        for (peer, at) in contacted where !memberSet.contains(peer) {
            if at <= idleSince {
                forgotten.append(peer)
            } else {
                nextIdleCheckAt = min(nextIdleCheckAt, at + settings.idleConnectionTimeout)
            }
        }
        for peer in forgotten { contacted[peer] = nil }
    }

    /// The first time after `now` on the cadence of `due` plus multiples of `period`: periodic
    /// work keeps its rhythm whatever the timer's jitter, and skips what a pause missed.
    private static func nextOccurrence(of due: Int64, every period: Int64, after now: Int64) -> Int64 {
        due + ((now - due) / period + 1) * period
    }

    private mutating func reportDown(
        _ peer: PeerID, reason: String, now: Int64, into directives: inout [MembershipDirective]
    ) {
        let wasConnected = connectedPeers.remove(peer)
        let wasContacted = contacted.removeValue(forKey: peer) != nil
        detector.unwatch(peer)
        guard wasConnected || wasContacted || memberSet.contains(peer) else { return }
        downReports.connectionLost += 1
        run("on_down", now: now, into: &directives) { s throws(ScriptError) in
            try s.connectionDown(peer.description, reason: reason, now: now)
        }
    }

    private mutating func run(
        _ callback: String, now: Int64, into directives: inout [MembershipDirective],
        _ body: (any OverlayStrategy) throws(ScriptError) -> OverlayOutcome
    ) {
        let outcome: OverlayOutcome
        do {
            outcome = try body(strategy)
        } catch {
            scriptErrors += 1
            directives.append(.scriptFailed(error))
            return
        }
        // Messages first: a goodbye must be queued before the connection it travels on is dropped.
        for message in outcome.messages {
            guard let peer = parsePeer(message.to, field: "messages[].to", callback: callback, into: &directives) else {
                continue
            }
            if peer != selfID {
                directives.append(.send(message.message, to: peer))
                contacted[peer] = now
                nextIdleCheckAt = min(nextIdleCheckAt, now + settings.idleConnectionTimeout)
            }
        }
        apply(members: outcome.members, from: callback, into: &directives)
    }

    private mutating func apply(members returned: [String]?, from callback: String, into directives: inout [MembershipDirective]) {
        guard let returned, returned != lastReturned else { return }
        var next: Set<PeerID> = [selfID]
        var allParsed = true
        for text in returned {
            if let peer = parsePeer(text, field: "members", callback: callback, into: &directives) {
                next.insert(peer)
            } else {
                allParsed = false
            }
        }
        lastReturned = allParsed ? returned : []
        let previous = memberSet
        for peer in next.subtracting(previous).sorted() {
            directives.append(.memberUp(peer))
            directives.append(.connect(peer))
        }
        for peer in previous.subtracting(next).sorted() {
            directives.append(.memberDown(peer))
            directives.append(.disconnect(peer))
            connectedPeers.remove(peer)
            detector.unwatch(peer)
            contacted[peer] = nil
        }
        members = next.sorted()
        memberSet = next
    }

    private mutating func parsePeer(
        _ text: String, field: String, callback: String, into directives: inout [MembershipDirective]
    ) -> PeerID? {
        do {
            return try PeerID(parsing: text)
        } catch {
            scriptErrors += 1
            directives.append(.scriptFailed(ScriptError(
                .badReturn, file: strategy.fileName, callback: callback,
                message: "\(field) holds \(error.description)",
                hint: "peer ids come from ctx.self, join's peer, on_message's from, or config"
            )))
            return nil
        }
    }
}

/// Failure detections: how many times the core reported a peer down to the overlay, by cause.
public struct DownReports: Sendable, Equatable {
    /// A membership connection that was up closed, or one could not be made.
    public var connectionLost = 0
    /// A connected peer answered no heartbeat within the failure timeout.
    public var heartbeatTimeout = 0

    public init() {}
}
