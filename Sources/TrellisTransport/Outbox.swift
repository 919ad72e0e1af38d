import NIOConcurrencyHelpers
import NIOCore
import TrellisWire

/// One connection's write queue: senders encode frames straight into a lock-protected buffer,
/// and the first sender after a flush schedules one flush on the event loop, which writes
/// everything queued in a single `writeAndFlush` — many messages, one syscall.
///
/// Requests and replies lead (`Flush.leading`): the first of a burst, queued on the
/// connection's own event loop, is written at once, and the rest of the burst follows in one
/// write when the loop's tick ends. The peer starts on the first while this side is still
/// producing the others, so concurrent callers on one connection overlap their round trips
/// instead of moving in lockstep, one batch per round trip. While the loops are awake anyway
/// (busy waiting, or busy loops), requests lead less (see `Transport.requestFlush`).
///
/// Frames queue up before the handshake completes and go out as soon as it does.
final class Outbox: Sendable {
    /// What `enqueue` does when the outbox is full or the connection is not up yet.
    enum Policy {
        /// Application sends: refuse (`.full`) while over the watermark or while the channel is
        /// unwritable, so the caller can wait.
        case wait
        /// Membership and replies: always queue on a live connection; refuse only while the
        /// connection is not up yet and the outbox is over the watermark.
        case never
        /// Heartbeats: queue only if the connection is up, refuse (`.full`) otherwise.
        case ifOpen
    }

    /// When a queued frame is written.
    enum Flush {
        /// With everything else queued until the flush the first sender scheduled.
        case coalesced
        /// At once if it is the first frame since the last flush and the sender runs on the
        /// connection's event loop; otherwise as `coalesced`. Frames queued after it wait for
        /// the scheduled flush, so a burst costs two writes, not one per frame.
        case leading
    }

    /// The outcome of `enqueue`.
    enum EnqueueResult {
        case enqueued
        /// Over the high watermark: wait with `waitForRoom()` and try again (or drop).
        case full
        case closed(String)
        case tooLarge(Int)
    }

    private struct State {
        var buffer: ByteBuffer
        /// A cleared buffer kept from the last flush, reused to avoid allocating per flush.
        var spare: ByteBuffer?
        /// Set once the handshake completed: flushes go here.
        var channel: (any Channel)?
        var flushScheduled = false
        /// Frames queued since the last flush, for the metrics.
        var frames = 0
        /// Where flushes are counted; set with `channel`.
        var metrics: ChannelMetrics?
        var channelWritable = true
        var closedReason: String?
        var waiters: [UnsafeContinuation<Bool, Never>] = []
        /// Keyed frames of a monotonic channel, at most one per key, written after `buffer`.
        var latest: [(key: String, frame: ByteBuffer)] = []
        var latestIndex: [String: Int] = [:]
        var latestBytes = 0

        var queuedBytes: Int { buffer.readableBytes + latestBytes }

        /// Whether `policy` refuses a new frame now.
        func refuses(_ policy: Policy, highWatermark: Int) -> Bool {
            let over = queuedBytes >= highWatermark
            switch policy {
            case .wait: return over || !channelWritable
            case .never: return over && channel == nil
            case .ifOpen: return channel == nil
            }
        }

        /// The channel to flush to after queuing, unless a flush is already scheduled.
        mutating func flushToSchedule() -> (any Channel)? {
            guard let channel, !flushScheduled else { return nil }
            flushScheduled = true
            return channel
        }

        /// Moves the keyed frames into `buffer`, in the order their keys were first queued.
        mutating func drainLatest() {
            for entry in latest { buffer.writeImmutableBuffer(entry.frame) }
            latest = []
            latestIndex = [:]
            latestBytes = 0
        }
    }

    private let state: NIOLockedValueBox<State>
    private let highWatermark: Int
    private let maxFrameSize: Int
    private static let largestSpare = 1 << 20

    /// The bytes written to the channel and not yet taken by the peer, past which the
    /// connection is closed (`ConnectionLimits.maxUnsentBytes`).
    private let unsentLimit: Int
    /// Keeps the event loop polling after each write, for the reply's sake; `nil` when busy-waiting is off.
    private let busyWait: BusyWaitMark?

    init(_ config: TransportConfig) {
        self.busyWait = BusyWaitMark(config.busyWait)
        self.highWatermark = config.outboxHighWatermark
        self.maxFrameSize = config.maxFrameSize
        self.unsentLimit = max(config.limits.maxUnsentBytes, config.outboxHighWatermark + 2 * config.maxFrameSize)
        self.state = NIOLockedValueBox(State(buffer: ByteBufferAllocator().buffer(capacity: 1024)))
    }

    /// Appends the frame `frame` writes (length prefix included: a `FrameCodec` writer), and
    /// schedules a flush if none is pending (`flush` says whether the frame goes out first).
    ///
    /// When `policy` refuses the frame, the result is `.full` and nothing is written.
    func enqueue(_ policy: Policy, flush timing: Flush = .coalesced, _ frame: (inout ByteBuffer) -> Void) -> EnqueueResult {
        let (result, flushChannel): (EnqueueResult, (any Channel)?) = state.withLockedValue { state in
            if let reason = state.closedReason { return (.closed(reason), nil) }
            if state.refuses(policy, highWatermark: highWatermark) { return (.full, nil) }
            let start = state.buffer.writerIndex
            frame(&state.buffer)
            let size = state.buffer.writerIndex - start - Framing.prefixSize
            if size > maxFrameSize {
                state.buffer.moveWriterIndex(to: start)
                return (.tooLarge(size), nil)
            }
            state.frames += 1
            return (.enqueued, state.flushToSchedule())
        }
        if let flushChannel {
            if timing == .leading, flushChannel.eventLoop.inEventLoop { flush(keepingScheduled: true) }
            flushChannel.eventLoop.execute { self.flush() }
        }
        return result
    }

    /// Queues the frame `write` writes as the latest for `key`, replacing one still queued for
    /// the same key (monotonic channels); otherwise as `enqueue`.
    func enqueueLatest(_ policy: Policy, key: String, _ write: (inout ByteBuffer) -> Void) -> EnqueueResult {
        var frame = ByteBufferAllocator().buffer(capacity: 64)
        write(&frame)
        let size = frame.readableBytes - Framing.prefixSize
        guard size <= maxFrameSize else { return .tooLarge(size) }
        let (result, flushChannel): (EnqueueResult, (any Channel)?) = state.withLockedValue { state in
            if let reason = state.closedReason { return (.closed(reason), nil) }
            if let index = state.latestIndex[key] {
                state.latestBytes += frame.readableBytes - state.latest[index].frame.readableBytes
                state.latest[index].frame = frame
                return (.enqueued, nil)
            }
            if state.refuses(policy, highWatermark: highWatermark) { return (.full, nil) }
            state.latestIndex[key] = state.latest.count
            state.latest.append((key, frame))
            state.latestBytes += frame.readableBytes
            state.frames += 1
            return (.enqueued, state.flushToSchedule())
        }
        if let flushChannel {
            flushChannel.eventLoop.execute { self.flush() }
        }
        return result
    }

    /// Whether an application send would be accepted now.
    var hasRoom: Bool {
        state.withLockedValue { $0.queuedBytes < highWatermark && $0.channelWritable }
    }

    /// Suspends until the outbox has room again; `false` if the connection closed meanwhile.
    func waitForRoom() async -> Bool {
        await withUnsafeContinuation { continuation in
            let now: Bool? = state.withLockedValue { state in
                if state.closedReason != nil { return false }
                if state.queuedBytes < highWatermark && state.channelWritable { return true }
                state.waiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Starts flushing to `channel`, writing what queued up during the handshake and counting
    /// every flush in `metrics`, if given. On the loop.
    func open(_ channel: any Channel, metrics: ChannelMetrics? = nil) {
        state.withLockedValue { state in
            state.channel = channel
            state.metrics = metrics
            state.flushScheduled = true
        }
        flush()
    }

    /// Writes everything queued. Runs on the channel's event loop. `keepingScheduled` leaves
    /// the flush scheduled, for a leading frame's write: frames queued after it wait for it.
    func flush(keepingScheduled: Bool = false) {
        let (pending, frames, metrics, channel): (ByteBuffer?, Int, ChannelMetrics?, (any Channel)?) = state.withLockedValue { state in
            state.flushScheduled = keepingScheduled
            state.drainLatest()
            guard let channel = state.channel, state.closedReason == nil, state.buffer.readableBytes > 0 else {
                return (nil, 0, nil, state.channel)
            }
            let pending = state.buffer
            let frames = state.frames
            state.frames = 0
            if var spare = state.spare.take() {
                spare.clear()
                state.buffer = spare
            } else {
                state.buffer = channel.allocator.buffer(capacity: min(pending.capacity, Self.largestSpare))
            }
            return (pending, frames, state.metrics, channel)
        }
        guard let channel else { return }
        if var pending {
            channel.writeAndFlush(pending, promise: nil)
            LoopActivity.noteIO(keepingPolling: busyWait)
            metrics?.sent(messages: frames, bytes: pending.readableBytes)
            if pending.capacity <= Self.largestSpare {
                pending.clear()
                let spare = pending
                state.withLockedValue { $0.spare = spare }
            }
        }
        let writable = channel.isWritable
        writabilityChanged(writable)
        if !writable, let unsent = try? channel.syncOptions?.getOption(.bufferedWritableBytes), unsent > unsentLimit {
            channel.pipeline.fireErrorCaught(ConnectionViolation.peerNotReading(unsent: unsent, limit: unsentLimit))
        }
    }

    /// Mirrors the channel's writability; resumes waiting senders once there is room. On the loop.
    func writabilityChanged(_ writable: Bool) {
        let waiters: [UnsafeContinuation<Bool, Never>] = state.withLockedValue { state in
            state.channelWritable = writable
            guard writable, state.queuedBytes < highWatermark, !state.waiters.isEmpty else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Refuses further frames and drops what is queued; returns the number of bytes dropped.
    @discardableResult
    func close(reason: String) -> Int {
        shut(reason: reason, onlyIfUp: false)?.readableBytes ?? 0
    }

    /// Refuses further frames and hands back what is queued, so that it can still be written
    /// before the connection closes; `nil` (and nothing changes) while the connection is not up,
    /// since then there is nowhere to write.
    func seal(reason: String) -> ByteBuffer? {
        shut(reason: reason, onlyIfUp: true)
    }

    /// Refuses further frames, wakes waiting senders with `false` and takes what is queued;
    /// `nil` if already closed, or (with `onlyIfUp`) while the connection is not up.
    private func shut(reason: String, onlyIfUp: Bool) -> ByteBuffer? {
        let (pending, waiters): (ByteBuffer?, [UnsafeContinuation<Bool, Never>]) = state.withLockedValue { state in
            guard state.closedReason == nil, !onlyIfUp || state.channel != nil else { return (nil, []) }
            state.closedReason = reason
            state.drainLatest()
            let pending = state.buffer
            state.buffer.clear()
            state.spare = nil
            defer { state.waiters = [] }
            return (pending, state.waiters)
        }
        for waiter in waiters { waiter.resume(returning: false) }
        return pending
    }

    /// Whether the handshake completed and frames started going out (it stays `true` once closed).
    var hasOpened: Bool { state.withLockedValue { $0.channel != nil } }

    /// Why the outbox was closed, or `nil` while it is open.
    var closedReason: String? { state.withLockedValue { $0.closedReason } }
}
