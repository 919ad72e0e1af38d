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
/// The cost is CPU time that would otherwise be idle: up to `threads` CPUs for `window` after
/// each burst of traffic. In a container with a CPU quota that time counts against the quota;
/// there, or when power matters more than latency, use `.off`.
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
    public static var standard: BusyWait { BusyWait(window: .microseconds(200)) }

    /// No spinning: idle CPUs halt at once.
    public static var off: BusyWait { BusyWait(window: .zero, threads: 0) }

    /// Whether any spinning happens.
    public var isOn: Bool { window > .zero && threads > 0 }
}
