import NIOCore
import NIOPosix
import Synchronization

/// How many of the process's event loops had network I/O lately: what tells loops that keep
/// the CPUs busy from loops that mostly sleep.
///
/// Every read and flush notes the time on its loop's record (`noteIO`): a thread-specific
/// lookup, and a store at most once per eighth of a window. Counting (`busyLoops`) loads every
/// loop's record without a lock, so requests and polling loops never wait on each other here.
/// Busy waiting polls only while few loops are busy, and a request behind outstanding ones
/// joins its burst's write while many are (`Transport.requestFlush`).
enum LoopActivity {
    /// When one loop last had I/O: one of the process's fixed slots, held by one loop thread at
    /// a time.
    private final class Record: Sendable {
        /// The uptime in nanoseconds of the loop's latest read or flush, to within an eighth
        /// of `window`; 0 while the slot is free.
        let lastIO = Atomic<UInt64>(0)
        /// Whether a loop thread holds the slot.
        let held = Atomic<Bool>(false)
    }

    /// A loop thread's own handle on its slot: released when the thread ends, it frees the slot.
    private final class Owner: Sendable {
        let record: Record
        init(record: Record) { self.record = record }
        deinit {
            record.lastIO.store(0, ordering: .relaxed)
            record.held.store(false, ordering: .releasing)
        }
    }

    private static let onThisThread = ThreadSpecificVariable<Owner>()
    /// The slots, made once: counting reads this array without a lock. Slots past `slotsInUse`
    /// were never held.
    private static let slots: [Record] = (0..<slotCount).map { _ in Record() }
    private static let slotCount = 1024
    /// How many slots were ever held: threads that end free theirs for the next ones.
    static let slotsInUse = Atomic<Int>(0)
    /// Serialises claiming a slot, which happens once per loop thread.
    private static let claiming = Mutex<Void>(())

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
        var count = 0
        for index in 0..<slotsInUse.load(ordering: .acquiring) where slots[index].lastIO.load(ordering: .relaxed) > since {
            count += 1
        }
        return count
    }

    /// Whether more than `maxBusyLoops` loops had I/O within the window before `now`.
    static func isSaturated(now: UInt64) -> Bool { busyLoops(now: now) > maxBusyLoops }

    private static func ownRecord() -> Record {
        if let owner = onThisThread.currentValue { return owner.record }
        let owner = Owner(record: claimSlot())
        onThisThread.currentValue = owner
        return owner.record
    }

    /// A free slot, or, past `slotCount` loop threads at once, a record of its own that no
    /// count sees (that loop then never counts as busy).
    private static func claimSlot() -> Record {
        claiming.withLock { _ in
            let inUse = slotsInUse.load(ordering: .relaxed)
            if let free = slots[..<inUse].first(where: { !$0.held.load(ordering: .acquiring) }) {
                free.held.store(true, ordering: .relaxed)
                return free
            }
            guard inUse < slotCount else { return Record() }
            slots[inUse].held.store(true, ordering: .relaxed)
            slotsInUse.store(inUse + 1, ordering: .releasing)
            return slots[inUse]
        }
    }
}
