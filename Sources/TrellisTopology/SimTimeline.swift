/// The join plan, the schedule and the report times as one list of events in virtual time.
struct SimTimeline {
    enum Event {
        case join(joiner: String, target: String)
        case action(ScheduledAction)
        case report(ReportPoint)
    }

    private var events: [(at: Int64, event: Event)]
    private var next = 0
    private let lastActionAt: Int64?

    init(_ topology: Topology) {
        var events: [(at: Int64, event: Event)] = topology.join.steps.enumerated().map { step, join in
            (Int64(step * topology.join.delayMs), .join(joiner: join.joiner, target: join.target))
        }
        events += topology.schedule.map { (Int64($0.atMs), .action($0)) }
        events += topology.reports.map { (Int64($0.atMs), .report($0)) }
        self.events = events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        self.lastActionAt = topology.schedule.last.map { Int64($0.atMs) }
    }

    /// The events due by `now` not handed out yet, in order, with their times.
    mutating func due(at now: Int64) -> [(at: Int64, event: Event)] {
        var due: [(at: Int64, event: Event)] = []
        while next < events.count, events[next].at <= now {
            due.append(events[next])
            next += 1
        }
        return due
    }

    /// When the next event is due, if any.
    var nextAt: Int64? { next < events.count ? events[next].at : nil }

    /// Whether every scheduled action has been handed out.
    func scheduleDone(at now: Int64) -> Bool { lastActionAt.map { now >= $0 } ?? true }
}
