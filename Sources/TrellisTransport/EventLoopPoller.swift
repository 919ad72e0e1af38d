#if os(Linux)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Keeps an event loop polling its epoll instance for a while after network I/O instead of
/// sleeping in `epoll_wait` (see `BusyWait`).
///
/// After a read or a flush, the loop queues a task that polls the loop's epoll descriptor
/// without blocking, yielding the CPU between polls (`sched_yield`), until something is ready
/// or the window passes. As soon as the descriptor is ready the task ends and NIO's own
/// `epoll_wait` returns at once: the next message is read without a thread being woken. The
/// task polls in slices of a hundredth of the window (2 µs for the usual 200 µs, at least
/// 1 µs) and queues itself again after each, so a task queued behind it waits one slice at
/// most. A loop that is shut down while it polls stops within the window.
///
/// A loop polls only while at most half the CPUs' worth of loops in the process had I/O
/// within the window: more busy loops keep the CPUs busy anyway, and a polling loop would
/// only take their time (and keep the kernel from moving waiting threads to its CPU).
///
/// One poller per event-loop thread, found through a thread-specific variable; its state is
/// bound to that loop. Linux only: elsewhere `install` fails and loops sleep as usual.
final class EventLoopPoller: Sendable {
    /// What `install` did.
    enum Installation {
        /// The loop polls after I/O (from now, or already did).
        case polling
        /// The loop's epoll descriptor could not be found (now, or before: not tried again).
        case unavailable(firstTime: Bool)
    }

    private struct State {
        /// The uptime in nanoseconds until which the loop polls.
        var until: UInt64 = 0
        /// The window of the latest I/O.
        var window: UInt64 = 0
        /// Whether the polling task is queued or running.
        var polling = false
    }

    private static let onThisThread = ThreadSpecificVariable<EventLoopPoller>()
    /// How long one polling task polls before it queues itself again behind the loop's tasks:
    /// a hundredth of the window, at least 1 µs, so that a window takes at most a hundred
    /// tasks (a loop that is shutting down runs its queued tasks at most a thousand times).
    private static func slice(of window: UInt64) -> UInt64 { max(1_000, window / 100) }

    private let eventLoop: any EventLoop
    /// The loop's epoll descriptor; `nil` when it could not be found.
    private let selector: CInt?
    private let state: NIOLoopBoundBox<State>

    private init(eventLoop: any EventLoop, selector: CInt?) {
        self.eventLoop = eventLoop
        self.selector = selector
        self.state = NIOLoopBoundBox(State(), eventLoop: eventLoop)
    }

    /// Makes the loop of `channel` (the calling thread) poll after I/O, unless it does
    /// already or could not before. Finds the loop's epoll descriptor through the channel's
    /// socket.
    static func install(for channel: any Channel) -> Installation {
        channel.eventLoop.preconditionInEventLoop()
        if let installed = onThisThread.currentValue {
            return installed.selector == nil ? .unavailable(firstTime: false) : .polling
        }
        let poller = EventLoopPoller(eventLoop: channel.eventLoop, selector: epollDescriptor(of: channel))
        onThisThread.currentValue = poller
        return poller.selector == nil ? .unavailable(firstTime: true) : .polling
    }

    private static func epollDescriptor(of channel: any Channel) -> CInt? {
        #if os(Linux)
        guard let local = channel.localAddress, let remote = channel.remoteAddress else { return nil }
        return SelectorDescriptor.epoll(watchingSocketFrom: local, to: remote)
        #else
        return nil
        #endif
    }

    /// Keeps the calling event loop polling for `window` nanoseconds from `now`, when it has a
    /// poller. Called on every read and flush (after `LoopActivity.noteIO`).
    static func noteIO(now: UInt64, window: UInt64) {
        onThisThread.currentValue?.poll(now: now, window: window)
    }

    /// Whether the calling thread's loop is polling now (for tests).
    static var isPollingOnThisThread: Bool { onThisThread.currentValue?.state.value.polling ?? false }

    /// The epoll descriptor the calling thread's loop polls, if any (for tests).
    static var selectorOnThisThread: CInt? { onThisThread.currentValue?.selector }

    /// Whether loops may poll when `busy` of them had I/O within the window.
    static func mayPoll(busyLoops busy: Int) -> Bool { busy <= LoopActivity.maxBusyLoops }

    private func poll(now: UInt64, window: UInt64) {
        guard selector != nil else { return }
        state.value.until = now &+ window
        state.value.window = window
        guard !state.value.polling, Self.mayPoll(busyLoops: LoopActivity.busyLoops(now: now, window: window)) else { return }
        state.value.polling = true
        eventLoop.execute { self.pollSlice() }
    }

    /// Polls until something is ready, the window passes, or the slice ends; then queues
    /// itself again while few enough loops are busy.
    private func pollSlice() {
        #if os(Linux)
        if let selector, pollSlice(selector) { return }
        #endif
        state.value.polling = false
    }

    #if os(Linux)
    /// Polls `selector` for one slice; returns whether the polling goes on (queued again).
    private func pollSlice(_ selector: CInt) -> Bool {
        let sliceEnd = NIODeadline.now().uptimeNanoseconds &+ Self.slice(of: state.value.window)
        var descriptor = pollfd(fd: selector, events: Int16(POLLIN), revents: 0)
        while true {
            let now = NIODeadline.now().uptimeNanoseconds
            if now >= state.value.until || Glibc.poll(&descriptor, 1, 0) != 0 { return false }
            if now >= sliceEnd {
                guard Self.mayPoll(busyLoops: LoopActivity.busyLoops(now: now, window: state.value.window)) else { return false }
                eventLoop.execute { self.pollSlice() }
                return true
            }
            sched_yield()
        }
    }
    #endif
}

/// A connection's handle on its event loop's poller: marks its reads and flushes.
struct BusyWaitMark: Sendable {
    private let window: UInt64

    /// `nil` when `busyWait` is off.
    init?(_ busyWait: BusyWait) {
        guard busyWait.isOn else { return nil }
        window = UInt64(TimeAmount(busyWait.window).nanoseconds)
    }

    /// Called on the connection's event loop after a read or a flush at `now` (uptime ns).
    func mark(now: UInt64) { EventLoopPoller.noteIO(now: now, window: window) }
}
