import Dispatch
import Synchronization

/// Runs jobs one at a time, in the order they were submitted, the way a Swift actor does.
///
/// A job submitted while the mailbox is idle, with nothing queued, runs at once on the
/// submitting thread: a call to an idle Lua actor costs no thread hop. A job submitted while
/// another runs is queued, and the queue is drained on a dispatch queue, never by a thread
/// that came to run its own job: a submitter runs at most its own job, however long the queue.
/// The lock that hands the mailbox from one job to the next orders each job's memory accesses
/// after the previous job's, so state touched only by jobs needs no lock of its own.
final class SerialMailbox: Sendable {
    typealias Job = @Sendable () -> Void

    private struct State {
        /// Whether a job runs now, inline or on the drainer.
        var running = false
        /// Jobs waiting, oldest first. Never non-empty while idle without a drain scheduled.
        var queued: [Job] = []
        var drainScheduled = false
    }

    private let state = Mutex(State())
    private let drainer: DispatchQueue

    /// - Parameter label: names the dispatch queue that drains what waited.
    init(label: String) {
        drainer = DispatchQueue(label: label)
    }

    /// Runs `job` now on this thread if the mailbox is idle, else after every job before it.
    func submit(_ job: @escaping Job) {
        let runsNow = state.withLock { state in
            if !state.running && state.queued.isEmpty {
                state.running = true
                return true
            }
            state.queued.append(job)
            return false
        }
        guard runsNow else { return }
        job()
        finished()
    }

    /// After a job: idle again, or a drain for what queued up meanwhile.
    private func finished() {
        let drain = state.withLock { state in
            state.running = false
            guard !state.queued.isEmpty, !state.drainScheduled else { return false }
            state.drainScheduled = true
            return true
        }
        if drain { drainer.async { self.drain() } }
    }

    private func drain() {
        let jobs = state.withLock { state in
            state.drainScheduled = false
            guard !state.running else { return [Job]() }
            state.running = !state.queued.isEmpty
            defer { state.queued = [] }
            return state.queued
        }
        guard !jobs.isEmpty else { return }
        for job in jobs { job() }
        finished()
    }
}
