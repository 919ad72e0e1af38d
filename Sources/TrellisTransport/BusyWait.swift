import NIOCore

/// How long a node's event loops keep polling after network I/O instead of sleeping, so that
/// the next message is read at once instead of waking a sleeping thread.
///
/// A thread blocked in `epoll_wait` on an idle CPU is woken only after that CPU leaves its
/// idle state; on a virtual machine that is an exit to the hypervisor, tens of microseconds,
/// and it bounds every round trip (a request and its reply each pay it). While the window
/// runs, a loop that has nothing to do polls its epoll instance without blocking and yields
/// the CPU between polls, so any other thread on that CPU runs first; once the window passes
/// with no I/O it sleeps as usual (`EventLoopPoller`). Loops poll only while at most half the
/// CPUs' worth of the process's loops are busy: beyond that the CPUs have work anyway. Erlang's
/// schedulers spin the same way by default (`+sbwt`).
///
/// It is off by default, because it costs CPU time that would otherwise be idle (up to one CPU
/// per polling loop for `window` after each burst of traffic, counted against a container's
/// CPU quota). Turn it on (`.lowLatency`) where request/response latency matters most;
/// BENCHMARKS.md has both sides measured. Linux only (the loop's epoll descriptor is found
/// through `/proc/self`); elsewhere loops sleep as usual.
public struct BusyWait: Sendable, Equatable {
    /// How long a loop polls after its last read or write.
    public var window: Duration

    public init(window: Duration) {
        self.window = window
    }

    /// Poll for 200 µs after I/O: a round trip of a few tens of microseconds keeps both ends
    /// polling from one call to the next.
    public static var lowLatency: BusyWait { BusyWait(window: .microseconds(200)) }

    /// No polling: loops sleep in `epoll_wait` at once. The default.
    public static var off: BusyWait { BusyWait(window: .zero) }

    /// Whether any polling happens.
    public var isOn: Bool { window > .zero }
}
