import NIOConcurrencyHelpers
import NIOCore
import TrellisFaults
import TrellisLua
import TrellisTransport
import TrellisWire

/// A node's fault injection: the plan in force and the decider applying it to every message
/// the node receives (application messages, requests, membership messages and heartbeat
/// answers). With no plan installed, a message costs one uncontended lock.
///
/// A node judges only what it receives, so the rules' `to` picks receivers among the nodes
/// holding them: install the same plan on every node to describe the whole network.
final class FaultInjector: @unchecked Sendable {
    // Safety of @unchecked Sendable: `decider` (and so the fault script's Lua VM), `selfID`
    // and `metrics` are read and written only while `lock` is held, so one thread at a time
    // touches them; the lock's acquire/release orders those uses. `group` is immutable and
    // Sendable.
    private let lock = NIOLock()
    private var decider: FaultDecider?
    private var selfID: PeerID?
    private var metrics: NodeMetrics?
    private let group: any EventLoopGroup

    /// An injector with no plan; `install` needs the node's id set first.
    init(group: any EventLoopGroup) {
        self.group = group
    }

    /// The receiving end of every message judged: this node, once its listener is bound;
    /// verdicts and fault script failures are counted in `metrics`.
    func bind(to selfID: PeerID, metrics: NodeMetrics) {
        lock.withLock {
            self.selfID = selfID
            self.metrics = metrics
        }
    }

    /// Replaces the plan in force; nil (or an empty plan) stops injecting.
    func install(_ decider: FaultDecider?) {
        lock.withLock { self.decider = decider?.plan.isEmpty == false ? decider : nil }
    }

    /// The plan in force, what it has done, and the fault script's latest failure.
    var status: (plan: FaultPlan, counts: FaultCounts, lastScriptError: ScriptError?) {
        lock.withLock { (decider?.plan ?? .none, decider?.counts ?? FaultCounts(), decider?.lastScriptError) }
    }

    /// The fate of one message from `sender` on `channel`; `.deliver` when no plan is in force.
    func verdict(from sender: PeerID, channel: ChannelName, message: () -> Value?) -> FaultVerdict {
        lock.withLock {
            guard let decider, let selfID else { return .deliver }
            return judge(from: sender, to: selfID, channel: channel, with: decider, message: message)
        }
    }

    /// One verdict, counted in the metrics; the caller holds `lock`.
    private func judge(
        from sender: PeerID, to receiver: PeerID, channel: ChannelName, with decider: FaultDecider, message: () -> Value?
    ) -> FaultVerdict {
        let failures = decider.counts.scriptErrors
        let verdict = decider.verdict(from: sender, to: receiver, channel: channel.name, message: message)
        metrics?.judged(verdict)
        if decider.counts.scriptErrors != failures {
            metrics?.scriptFailed("fault", decider.lastScriptError?.callback ?? "decide")
        }
        return verdict
    }

    /// Passes a batch of application messages to `deliver`, minus those dropped; duplicates
    /// go with their original, delayed ones each in a batch of their own, later.
    func pass(_ batch: [InboundMessage], to deliver: @escaping @Sendable ([InboundMessage]) -> Void) {
        // One lock for the whole read: nil (deliver all) when no plan is in force.
        let verdicts: [FaultVerdict]? = lock.withLock {
            guard let decider, let selfID else { return nil }
            return batch.map { message in
                judge(from: message.from, to: selfID, channel: message.channel, with: decider) { Self.value(of: message.payload) }
            }
        }
        guard let verdicts else { return deliver(batch) }
        var now: [InboundMessage] = []
        now.reserveCapacity(batch.count)
        for (message, verdict) in zip(batch, verdicts) {
            switch verdict {
            case .deliver: now.append(message)
            case .drop: break
            case .duplicate: now += [message, message]
            case .delay(let milliseconds): later(milliseconds) { deliver([message]) }
            }
        }
        if !now.isEmpty { deliver(now) }
    }

    /// Runs `handle` for one message (a request or a membership event) as its verdict says:
    /// not at all, once, twice, or once after the delay.
    func pass(from sender: PeerID, channel: ChannelName, message: () -> Value?, _ handle: @escaping @Sendable () -> Void) {
        switch verdict(from: sender, channel: channel, message: message) {
        case .deliver: handle()
        case .drop: break
        case .duplicate:
            handle()
            handle()
        case .delay(let milliseconds): later(milliseconds, handle)
        }
    }

    /// Runs `work` after the delay. The timer is set from the loop's own thread: a loop that
    /// has shut down then drops the hop, where a timer set from outside would leak its promise.
    private func later(_ milliseconds: Int, _ work: @escaping @Sendable () -> Void) {
        let loop = group.next()
        loop.execute { loop.scheduleTask(in: .milliseconds(Int64(milliseconds)), work) }
    }

    /// What a fault script sees of a payload: the value, or raw bytes as a string.
    static func value(of payload: Payload) -> Value {
        switch payload {
        case .value(let value): value
        case .bytes(let buffer): .bytes(Array(buffer.readableBytesView))
        }
    }
}
