#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization

/// The process's spinner threads (see `BusyWait`): every transport in the process marks its
/// I/O here (`shared`), and the spinners poll until the latest mark's window has passed, then
/// sleep until the next one.
final class BusyWaitSpinners: Sendable {
    static let shared = BusyWaitSpinners()

    /// The uptime in nanoseconds until which the spinners poll.
    private let deadline = Atomic<UInt64>(0)
    /// Spinners asleep, or about to sleep: a mark wakes them when there are any.
    private let sleepers = Atomic<Int>(0)
    private let started = Mutex(0)
    private let bed = SpinnerBed()

    /// Starts spinner threads until `count` run.
    func ensureRunning(_ count: Int) {
        let more = started.withLock { started in
            defer { started = max(started, count) }
            return max(0, count - started)
        }
        for _ in 0..<more { startThread() }
    }

    /// How many spinner threads run.
    var threads: Int { started.withLock { $0 } }

    /// How many spinners sleep (or are about to).
    var sleeping: Int { sleepers.load(ordering: .sequentiallyConsistent) }

    /// Keeps the spinners polling for `window` nanoseconds from now. Called on every socket
    /// read and flush, so it costs a clock read and, mostly, nothing else: the shared deadline
    /// is rewritten only once it has less than seven-eighths of a window left.
    func mark(window: UInt64) {
        let until = NIODeadline.now().uptimeNanoseconds &+ window
        if deadline.load(ordering: .relaxed) > until &- window / 8 { return }
        // Sequentially consistent with `spin()`: either a spinner going to sleep sees this
        // deadline, or this sees it going to sleep and wakes it.
        deadline.store(until, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 { bed.wakeAll() }
    }

    private var due: Bool { NIODeadline.now().uptimeNanoseconds >= deadline.load(ordering: .sequentiallyConsistent) }

    private func spin() -> Never {
        Self.yieldToEverything()
        while true {
            while NIODeadline.now().uptimeNanoseconds < deadline.load(ordering: .relaxed) {}
            bed.sleep(
                while: { due },
                entering: { sleepers.add(1, ordering: .sequentiallyConsistent) },
                leaving: { sleepers.subtract(1, ordering: .sequentiallyConsistent) }
            )
        }
    }

    private func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            Unmanaged<BusyWaitSpinners>.fromOpaque(context!).takeRetainedValue().spin()
        }, context)
        if created == 0 { pthread_detach(thread) } else { Unmanaged<BusyWaitSpinners>.fromOpaque(context).release() }
    }

    /// Names the calling thread and puts it in Linux's `SCHED_IDLE` class: it runs only when
    /// its CPU has nothing else to run, and a waking thread preempts it at once.
    private static func yieldToEverything() {
        #if os(Linux)
        // pthread_setname_np also needs _GNU_SOURCE; the thread's comm file does the same.
        let comm = open("/proc/thread-self/comm", O_WRONLY)
        if comm >= 0 {
            _ = "trellis-spin".withCString { write(comm, $0, strlen($0)) }
            close(comm)
        }
        // SCHED_IDLE from <sched.h>, which Glibc's module leaves out (it needs _GNU_SOURCE).
        let schedIdle: Int32 = 5
        var parameters = sched_param()
        parameters.sched_priority = 0
        pthread_setschedparam(pthread_self(), schedIdle, &parameters)
        #endif
    }
}

/// Where idle spinners sleep: a mutex and a condition variable.
///
/// `@unchecked Sendable`: the two pthread objects are allocated once, at a fixed address, and
/// only ever used through the pthread calls, which are thread-safe; the pointers never change.
/// Its spinners keep it alive (a spinner thread never ends), so it is freed only when none ran.
private final class SpinnerBed: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Sleeps while `stillDue` holds; `entering` and `leaving` run under the mutex, before
    /// the first check and after the last.
    func sleep(while stillDue: () -> Bool, entering: () -> Void, leaving: () -> Void) {
        pthread_mutex_lock(mutex)
        entering()
        while stillDue() { pthread_cond_wait(condition, mutex) }
        leaving()
        pthread_mutex_unlock(mutex)
    }

    /// Wakes every sleeper.
    func wakeAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}

/// A connection's handle on the spinners: marks its reads and flushes with its window.
struct BusyWaitMark: Sendable {
    private let window: UInt64

    /// `nil` when `busyWait` is off. The transport starts the threads (`BusyWaitSpinners.ensureRunning`).
    init?(_ busyWait: BusyWait) {
        guard busyWait.isOn else { return nil }
        window = UInt64(TimeAmount(busyWait.window).nanoseconds)
    }

    func mark() { BusyWaitSpinners.shared.mark(window: window) }
}
