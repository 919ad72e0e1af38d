import NIOCore
import TrellisWire

/// Runs a task's jobs on a NIO event loop.
///
/// A task that prefers this executor (`withTaskExecutorPreference`) runs on the loop's thread,
/// so a request it sends on a connection of that loop, the reply, and the task's resumption
/// all happen on one thread: no wake-ups of other threads on the caller's side.
public final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    /// The loop the jobs run on.
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        eventLoop.execute { job.runSynchronously(on: executor) }
    }
}

extension Transport {
    /// The event loop of the connection to `peer` on `channel` that `key` picks (the first
    /// without a key), dialing it if needed: run a caller there, with `EventLoopTaskExecutor`,
    /// for the lowest request latency.
    public func eventLoop(for peer: PeerID, channel: ChannelName = .default, key: String? = nil) -> (any EventLoop)? {
        connection(to: peer, channel: channel, key: key)?.eventLoop
    }
}
