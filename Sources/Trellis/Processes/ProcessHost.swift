import TrellisTransport
import TrellisWire

/// The outcome of one call to a process: its reply, or why there is none.
typealias CallResult = Result<Value, ProcessError>

/// The processes of one capability on this node, whatever runs them (Swift or Lua).
///
/// Answers arrive through callbacks so that a Swift process can answer on the thread the
/// request came in on, with no task or executor hop.
protocol ProcessHost: Sendable {
    /// Runs a call to process `id`, activating it first if needed; `reply` is called once.
    func call(_ id: String, payload: Value, from: PeerID, reply: @escaping @Sendable (CallResult) -> Void)
    /// Delivers a cast to process `id`, activating it first if needed.
    func cast(_ id: String, payload: Value)
    /// Passivates every process idle for `idleNanoseconds` or more as of `now` (processes
    /// used after `now` are kept).
    func passivate(idleNanoseconds: UInt64, now: UInt64) async
    /// Removes the processes for which `moves` is true, handing over their states; ids whose
    /// state cannot be handed over are listed with nil.
    func handOff(where moves: @escaping @Sendable (String) -> Bool) async -> [(id: String, state: Value?)]
    /// Installs a process handed over by its previous owner, before any call that arrives
    /// after this returns is served. A process with that id already live here (a call reached
    /// this node before the handoff did) is replaced by the handed-over state, and
    /// `replacedLive` is called. With no state (nil) a live process stays; with no live
    /// process either, the process starts afresh on its next call.
    func resume(_ id: String, from value: Value?, replacedLive: @escaping @Sendable () -> Void)
    /// How many processes are active.
    func activeCount() async -> Int
    /// Whether no process is active, as of the last completed call.
    var isEmpty: Bool { get }
}
