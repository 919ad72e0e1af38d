import NIOCore

/// How long a node keeps the machine's idle CPUs awake after network I/O, so that the next
/// message wakes a thread on a running CPU instead of a halted one.
///
/// A thread blocked in `epoll_wait` on an idle CPU is woken only after that CPU leaves its
/// idle state; on a virtual machine that is an exit to the hypervisor, tens of microseconds,
/// and it bounds every round trip (a request and its reply each pay it). While the window
/// runs, low-priority spinner threads (Linux `SCHED_IDLE`, one per CPU by default) keep the
/// CPUs polling; any real work preempts them at once, and once the window passes with no
/// I/O they sleep. Erlang's schedulers do the same by default (`+sbwt`).
///
/// It is off by default, because it has costs: CPU time that would otherwise be idle (up to
/// `threads` CPUs for `window` after each burst of traffic, counted against a container's CPU
/// quota), and under heavy concurrent load a little throughput, since a thread that wakes must
/// then preempt a spinner instead of taking an idle CPU. Turn it on (`.lowLatency`) where
/// request/response latency matters most; BENCHMARKS.md has both sides measured.
public struct BusyWait: Sendable, Equatable {
    /// How long the spinners run after the last read or write on any connection.
    public var window: Duration
    /// How many spinner threads run in this process (all nodes in it share them).
    public var threads: Int

    public init(window: Duration, threads: Int = System.coreCount) {
        self.window = window
        self.threads = threads
    }

    /// Spin for 200 µs after I/O on every CPU: a round trip of a few tens of microseconds
    /// keeps both ends awake from one call to the next.
    public static var lowLatency: BusyWait { BusyWait(window: .microseconds(200)) }

    /// No spinning: idle CPUs halt at once. The default.
    public static var off: BusyWait { BusyWait(window: .zero, threads: 0) }

    /// Whether any spinning happens.
    public var isOn: Bool { window > .zero && threads > 0 }
}
