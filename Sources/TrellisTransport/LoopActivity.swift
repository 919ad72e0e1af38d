import NIOCore
import NIOPosix
import Synchronization

/// How many of the process's event loops had network I/O lately: what tells loops that keep
/// the CPUs busy from loops that mostly sleep.
///
/// Every read and flush notes the time on its loop's record (`noteIO`): a thread-specific
/// lookup, and a store at most once per eighth of a window. Counting (`busyLoops`) reads every
/// loop's record under a lock. Busy waiting polls only while few loops are busy, and a request
/// behind outstanding ones joins its burst's write while many are (`Transport.requestFlush`).
enum LoopActivity {
    /// When one loop last had I/O; the process's list holds every loop's.
    private final class Record: Sendable {
        /// The uptime in nanoseconds of the loop's latest read or flush, to within an eighth
        /// of `window`.
        let lastIO = Atomic<UInt64>(0)
        /// Cleared when the loop's thread ends, to drop the record from the list.
        let running = Atomic<Bool>(true)
    }

    /// A loop thread's own handle on its record: released when the thread ends, it marks the
    /// record as gone.
    private final class Owner: Sendable {
        let record = Record()
        deinit { record.running.store(false, ordering: .relaxed) }
    }

    private static let onThisThread = ThreadSpecificVariable<Owner>()
    private static let all = Mutex<[Record]>([])

    /// How long after its last I/O a loop counts as busy: 200 µs, a round trip and more.
    static let window: UInt64 = 200_000
    /// More busy loops than this (half the CPUs) keep the CPUs busy.
    static let maxBusyLoops = max(1, System.coreCount / 2)

    /// Notes I/O on the calling thread's loop at `now` (uptime in nanoseconds).
    static func noteIO(now: UInt64) {
        let record = ownRecord()
        if record.lastIO.load(ordering: .relaxed) < now &- window / 8 { record.lastIO.store(now, ordering: .relaxed) }
    }

    /// Notes a read or a flush on the calling thread's loop, and keeps the loop polling when
    /// `busyWait` (the connection's mark; `nil` when busy waiting is off) says so.
    static func noteIO(keepingPolling busyWait: BusyWaitMark?) {
        let now = NIODeadline.now().uptimeNanoseconds
        noteIO(now: now)
        busyWait?.mark(now: now)
    }

    /// How many loops had I/O in the `window` nanoseconds before `now`.
    static func busyLoops(now: UInt64, window: UInt64 = window) -> Int {
        let since = now &- window
        return all.withLock { records in
            records.reduce(0) { count, record in
                let busy = record.lastIO.load(ordering: .relaxed) > since && record.running.load(ordering: .relaxed)
                return count + (busy ? 1 : 0)
            }
        }
    }

    /// Whether more than `maxBusyLoops` loops had I/O within the window before `now`.
    static func isSaturated(now: UInt64) -> Bool { busyLoops(now: now) > maxBusyLoops }

    private static func ownRecord() -> Record {
        if let owner = onThisThread.currentValue { return owner.record }
        let owner = Owner()
        all.withLock { records in
            records.removeAll { !$0.running.load(ordering: .relaxed) }
            records.append(owner.record)
        }
        onThisThread.currentValue = owner
        return owner.record
    }
}
