import Trellis
import TrellisWire

/// Carries out one `[[workload]]` of a topology against the running cluster: rounds of calls
/// from one node, then (once the schedule is done) a check of every id.
struct WorkloadRunner: Sendable {
    let workload: Workload
    let cluster: RunningCluster
    let startedAt: ContinuousClock.Instant

    /// Runs the rounds and the check; the report's line for this workload.
    func run() async -> UpReport.Check {
        var failed = 0
        var firstError: String?
        for round in 0..<workload.calls {
            let offset = workload.startMs + (workload.calls > 1 ? workload.spreadMs * round / (workload.calls - 1) : 0)
            try? await Task.sleep(until: startedAt + .milliseconds(offset), clock: .continuous)
            if Task.isCancelled { break }
            let errors = await failures(of: workload.payload)
            failed += errors.count
            firstError = firstError ?? errors.first
        }
        let total = workload.calls * workload.ids
        var detail = "\(total - failed) of \(total) calls succeeded"
        if let firstError { detail += " (first failure: \(firstError))" }
        guard let check = workload.check, let expected = workload.equals else {
            return UpReport.Check(name: workload.name, ok: failed == 0, detail: detail)
        }
        while await !cluster.scheduleDone, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
        let answers = await answers(to: check)
        let matching = answers.filter { $0 == expected }.count
        detail += "; \(matching) of \(workload.ids) ids answered \(describe(expected))"
        if let wrong = answers.first(where: { $0 != expected }) { detail += " (one answered \(describe(wrong)))" }
        return UpReport.Check(name: workload.name, ok: failed == 0 && matching == workload.ids, detail: detail)
    }

    private var ids: [String] { (1...workload.ids).map(String.init) }

    /// Calls every id once with `payload`; the errors.
    private func failures(of payload: Value) async -> [String] {
        await callEveryID(payload).compactMap { result in
            if case .failure(let error) = result { return "\(error)" }
            return nil
        }
    }

    /// Every id's answer to `payload`, `nil` where the call failed.
    private func answers(to payload: Value) async -> [Value?] {
        await callEveryID(payload).map { try? $0.get() }
    }

    private func callEveryID(_ payload: Value) async -> [Result<Value, ProcessError>] {
        guard let node = await cluster.runningNode(named: workload.from) else {
            return ids.map { _ in .failure(.noNodeHasCapability("(\(workload.from) is not running)")) }
        }
        let ids = self.ids
        let capability = workload.capability
        let lanes = min(workload.concurrency, ids.count)
        return await withTaskGroup(of: [(Int, Result<Value, ProcessError>)].self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var results: [(Int, Result<Value, ProcessError>)] = []
                    for index in stride(from: lane, to: ids.count, by: lanes) {
                        do throws(ProcessError) {
                            results.append((index, .success(try await node.call(capability, id: ids[index], payload))))
                        } catch {
                            results.append((index, .failure(error)))
                        }
                    }
                    return results
                }
            }
            var ordered = [Result<Value, ProcessError>](repeating: .success(.nil), count: ids.count)
            for await results in group {
                for (index, result) in results { ordered[index] = result }
            }
            return ordered
        }
    }

    private func describe(_ value: Value?) -> String {
        guard let value else { return "nothing (the call failed)" }
        switch value {
        case .int(let n): return "\(n)"
        case .string(let s): return "\"\(s)\""
        default: return "\(value)"
        }
    }
}
