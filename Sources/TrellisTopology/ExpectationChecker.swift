import TrellisWire

/// Decides, snapshot after snapshot, whether each expectation of a topology has held.
///
/// An expectation holds the first time a snapshot satisfies it, and fails when its deadline
/// passes first. Expectations anchored to the schedule are checked only once the last
/// scheduled action has run.
struct ExpectationChecker {
    private enum Status {
        case pending(lastDetail: String)
        case held(atMs: Int)
        case failed(detail: String)
    }

    private let expectations: [Expectation]
    private var statuses: [Status]
    /// Each expectation's verdict on the last snapshot, reused while the cluster is unchanged.
    private var verdicts: [Int: (holds: Bool, detail: String)] = [:]

    init(expectations: [Expectation]) {
        self.expectations = expectations
        self.statuses = expectations.map { _ in .pending(lastDetail: "not checked yet") }
    }

    var allDecided: Bool {
        statuses.allSatisfy { if case .pending = $0 { return false } else { return true } }
    }

    var passedCount: Int {
        statuses.filter { if case .held = $0 { return true } else { return false } }.count
    }

    /// Live nodes whose member count matches the first pending or held `members` expectation.
    func converged(_ snapshot: ClusterSnapshot) -> Int {
        let target = expectations.lazy.compactMap { if case .members(let count, nil) = $0.kind { return count } else { return nil } }.first
        guard let target else { return snapshot.liveCount }
        return snapshot.live.filter { $0.members.count == target }.count
    }

    /// Checks the pending expectations against `snapshot`. With `changed` false the snapshot
    /// is the one checked last time, and its verdicts are reused.
    mutating func evaluate(_ snapshot: ClusterSnapshot, now: Int, scheduleDone: Bool, changed: Bool = true) {
        if changed { verdicts = [:] }
        for (index, expectation) in expectations.enumerated() {
            guard case .pending = statuses[index] else { continue }
            if expectation.after == .schedule && !scheduleDone {
                statuses[index] = now > expectation.withinMs
                    ? .failed(detail: "the schedule had not finished by \(expectation.withinMs) ms")
                    : .pending(lastDetail: "waiting for the schedule")
                continue
            }
            let (holds, detail) = verdicts[index] ?? Self.check(expectation.kind, snapshot)
            verdicts[index] = (holds, detail)
            if holds {
                statuses[index] = .held(atMs: now)
            } else if now > expectation.withinMs {
                // What was seen before the deadline explains the miss; the state now may not.
                guard case .pending(let seen) = statuses[index] else { continue }
                statuses[index] = .failed(detail: "not within \(expectation.withinMs) ms: last seen: \(seen)")
            } else {
                statuses[index] = .pending(lastDetail: detail)
            }
        }
    }

    /// The verdicts; expectations still pending fail with what was last seen.
    func finish(now: Int) -> [UpReport.Check] {
        zip(expectations, statuses).map { expectation, status in
            switch status {
            case .held(let at): return .init(name: expectation.name, ok: true, detail: "held after \(at) ms")
            case .failed(let detail): return .init(name: expectation.name, ok: false, detail: detail)
            case .pending(let last): return .init(name: expectation.name, ok: false, detail: "time ran out at \(now) ms: \(last)")
            }
        }
    }

    private static func check(_ kind: Expectation.Kind, _ snapshot: ClusterSnapshot) -> (Bool, String) {
        switch kind {
        case .members(let count, let names):
            let checked = snapshot.live.filter { node in names.map { $0.contains(node.name) } ?? true }
            let off = checked.filter { $0.members.count != count }
            guard !checked.isEmpty else { return (false, "no live node to check") }
            if off.isEmpty { return (true, "\(checked.count) live nodes see \(count) members") }
            return (false, off.prefix(5).map { "\($0.name) sees \($0.members.count)" }.joined(separator: ", "))
        case .absent(let name):
            guard let target = snapshot.nodes.first(where: { $0.name == name }) else { return (true, "no node \(name)") }
            let holders = snapshot.live.filter { $0.name != name && $0.members.contains(target.id) }
            if holders.isEmpty { return (true, "\(name) is in no live node's members") }
            return (false, "\(name) still a member at " + holders.map(\.name).joined(separator: ", "))
        case .connected(let symmetric):
            return checkConnected(snapshot, symmetric: symmetric)
        }
    }

    private static func checkConnected(_ snapshot: ClusterSnapshot, symmetric: Bool) -> (Bool, String) {
        let live = Dictionary(uniqueKeysWithValues: snapshot.live.map { ($0.id, $0) })
        guard let first = snapshot.live.first else { return (false, "no live node") }
        for node in snapshot.live {
            let peers = node.members.filter { $0 != node.id }
            if let dead = peers.first(where: { live[$0] == nil }) { return (false, "\(node.name) still lists \(dead)") }
            if peers.isEmpty && live.count > 1 { return (false, "\(node.name) has no peer") }
            if symmetric, let peer = peers.first(where: { live[$0]?.members.contains(node.id) == false }) {
                return (false, "\(node.name) lists \(peer), which does not list it")
            }
        }
        var reached: Set<PeerID> = []
        var frontier = [first.id]
        while let next = frontier.popLast() {
            guard reached.insert(next).inserted else { continue }
            frontier += live[next]?.members ?? []
        }
        if reached.count == live.count { return (true, "\(live.count) live nodes form one component") }
        return (false, "\(reached.count) of \(live.count) live nodes reachable from \(first.name)")
    }
}
