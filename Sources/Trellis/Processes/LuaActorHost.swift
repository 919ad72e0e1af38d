import Dispatch
import NIOConcurrencyHelpers
import Logging
import TrellisLua
import TrellisTransport
import TrellisWire

/// The processes of one capability served by a Lua actor script.
///
/// All of them live in one VM, each state kept under its process id, and the VM is confined
/// to one `SerialMailbox`: calls and casts run one at a time in the order they arrived, on the
/// thread a call arrived on when the actor is idle (no thread hop), else after the others.
final class LuaActorHost: ProcessHost, @unchecked Sendable {
    // Safety of @unchecked Sendable: `script`, `lastUsed` and `successor` are read and written
    // only inside jobs submitted to `mailbox`, which runs one job at a time and orders each
    // job's accesses after the previous one's, so no two threads touch them at once; every
    // other stored property is a Sendable value or a lock.
    private let script: ActorScript
    private var lastUsed: [ExactString: UInt64] = [:]
    /// The host that replaced this one in a hot swap: everything still queued here goes there.
    private var successor: LuaActorHost?
    private let mailbox: SerialMailbox
    private let processCount = NIOLockedValueBox(0)
    private let logger: Logger
    /// Durations and failures of `handle_call`, `handle_cast`, `handoff` and `resume`.
    private let meters: (call: ScriptMeter, cast: ScriptMeter, handoff: ScriptMeter, resume: ScriptMeter)
    let capability: String
    /// The actor script's file name and `version`.
    let scriptVersion: String

    /// Loads the actor script; it serves the capability its table names. Its callbacks are
    /// timed and their failures counted in `metrics`.
    init(
        source: String, fileName: String, limits: ScriptLimits, seed: UInt64, logger: Logger, metrics: NodeMetrics
    ) throws(ScriptError) {
        self.script = try ActorScript(
            source: source, fileName: fileName, limits: limits, seed: seed,
            log: { line in logger.info("\(line)", metadata: ["source": "lua"]) }
        )
        self.capability = script.capability
        self.scriptVersion = "\(script.fileName) v\(script.version)"
        self.logger = logger
        self.meters = (
            metrics.script("actor", "handle_call"), metrics.script("actor", "handle_cast"), metrics.script("actor", "handoff"),
            metrics.script("actor", "resume"))
        self.mailbox = SerialMailbox(label: "trellis.actor.\(script.capability)")
    }

    /// Runs `body`, a callback of the script, timing it and counting its failure in `meter`.
    private func timed<Result>(_ meter: ScriptMeter, _ body: () throws(ScriptError) -> Result) throws(ScriptError) -> Result {
        do {
            return try meter.time(body)
        } catch {
            meter.errors.increment()
            throw error
        }
    }

    var isEmpty: Bool { processCount.withLockedValue { $0 == 0 } }

    /// Publishes the number of active processes; called in a mailbox job after every change.
    private func countProcesses() {
        let count = script.activeCount
        processCount.withLockedValue { $0 = count }
    }

    func call(_ id: String, payload: Value, from: PeerID, reply: @escaping @Sendable (CallResult) -> Void) {
        mailbox.submit { [self] in
            if let successor { return successor.call(id, payload: payload, from: from, reply: reply) }
            lastUsed[ExactString(id)] = DispatchTime.now().uptimeNanoseconds
            do {
                reply(.success(try timed(meters.call) { () throws(ScriptError) in
                    try script.call(id, payload: payload, from: from.description)
                }))
            } catch {
                lastUsed[ExactString(id)] = nil
                reply(.failure(.processFailed(capability: capability, id: id, reason: "\(error)")))
            }
            countProcesses()
        }
    }

    func cast(_ id: String, payload: Value) {
        mailbox.submit { [self] in
            if let successor { return successor.cast(id, payload: payload) }
            lastUsed[ExactString(id)] = DispatchTime.now().uptimeNanoseconds
            do {
                try timed(meters.cast) { () throws(ScriptError) in try script.cast(id, payload: payload) }
            } catch {
                lastUsed[ExactString(id)] = nil
                logger.warning("cast failed; the process starts afresh", metadata: ["error": "\(error)"])
            }
            countProcesses()
        }
    }

    func passivate(idleNanoseconds: UInt64, now: UInt64) async {
        mailbox.submit { [self] in
            for (key, used) in lastUsed where used < now && now - used >= idleNanoseconds {
                script.forget(key.text)
                lastUsed[key] = nil
            }
            countProcesses()
        }
    }

    func handOff(where moves: @escaping @Sendable (String) -> Bool) async -> [(id: String, state: Value?)] {
        await withCheckedContinuation { continuation in
            mailbox.submit { [self] in
                var moved: [(id: String, state: Value?)] = []
                for id in script.activeIDs where moves(id) {
                    lastUsed[ExactString(id)] = nil
                    do {
                        moved.append((id, try timed(meters.handoff) { () throws(ScriptError) in try script.handOff(id) }))
                    } catch {
                        logger.warning("handoff failed; the process starts afresh on its new owner", metadata: ["error": "\(error)"])
                        moved.append((id, nil))
                    }
                }
                countProcesses()
                continuation.resume(returning: moved)
            }
        }
    }

    func resume(_ id: String, from value: Value?, replacedLive: @escaping @Sendable () -> Void) {
        mailbox.submit { [self] in
            guard let value else { return }
            let wasLive = script.isActive(id)
            do {
                try timed(meters.resume) { () throws(ScriptError) in try script.resume(id, from: value) }
                lastUsed[ExactString(id)] = DispatchTime.now().uptimeNanoseconds
                if wasLive { replacedLive() }
            } catch {
                logger.warning("resume failed; the process starts afresh", metadata: ["error": "\(error)"])
            }
            countProcesses()
        }
    }

    func activeCount() async -> Int {
        await withCheckedContinuation { continuation in
            mailbox.submit { [self] in continuation.resume(returning: script.activeCount) }
        }
    }

    /// Hands every process to `replacement` (`handoff` here, `resume` there; processes this
    /// script cannot hand off start afresh) and forwards everything queued after that to it.
    /// Returns once done, so that callers switched to `replacement` afterwards queue behind
    /// the processes' states.
    func handOver(to replacement: LuaActorHost) async -> Int {
        await withCheckedContinuation { continuation in
            mailbox.submit { [self] in
                let ids = script.activeIDs
                for id in ids {
                    let value: Value?
                    do { value = try timed(meters.handoff) { () throws(ScriptError) in try script.handOff(id) } } catch { value = nil }
                    // No call reaches the replacement before this returns: nothing live to replace.
                    replacement.resume(id, from: value, replacedLive: {})
                }
                lastUsed = [:]
                successor = replacement
                countProcesses()
                continuation.resume(returning: ids.count)
            }
        }
    }
}
