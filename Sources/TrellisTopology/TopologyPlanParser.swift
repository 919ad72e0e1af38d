/// Parses the sections that refer to nodes by name: `[join]` and `[[expect]]`.
struct TopologyPlanParser {
    let nodeNames: [String]
    let timeoutMs: Int

    // MARK: [join]

    func parseJoin(_ table: TopologyTableReader?) throws(TopologyError) -> JoinPlan {
        guard let table else {
            return JoinPlan(strategy: .seed(nodeNames[0]), steps: steps(toSeed: nodeNames[0]), delayMs: 0)
        }
        try table.allowOnly(["plan", "seed", "explicit", "delay"])
        let plan = try table.choice("plan", ["seed", "chain", "explicit", "none"]) ?? "seed"
        for (key, owner) in [("seed", "seed"), ("explicit", "explicit")] where table.has(key) && plan != owner {
            throw table.error(
                .invalidValue, key, "`\(key)` is only used with plan = \"\(owner)\", but the plan is \"\(plan)\"",
                fix: "Remove `\(key)`, or set `plan = \"\(owner)\"`")
        }
        let strategy: JoinPlan.Strategy
        let steps: [JoinPlan.Step]
        switch plan {
        case "chain":
            strategy = .chain
            steps = zip(nodeNames.dropFirst(), nodeNames).map { JoinPlan.Step(joiner: $0, target: $1) }
        case "explicit":
            strategy = .explicit
            steps = try explicitSteps(table)
        case "none":
            strategy = .none
            steps = []
        default:
            let seed = try table.string("seed", example: "seed = \"\(nodeNames[0])\"") ?? nodeNames[0]
            try requireNode(seed, in: table, key: "seed")
            strategy = .seed(seed)
            steps = self.steps(toSeed: seed)
        }
        let delayMs = try table.duration("delay") ?? 0
        guard delayMs * max(steps.count - 1, 0) < timeoutMs else {
            throw table.error(
                .invalidValue, "delay", "\(steps.count) joins \(delayMs) ms apart take longer than the \(timeoutMs) ms timeout",
                fix: "Shorten `delay` or raise `timeout`")
        }
        return JoinPlan(strategy: strategy, steps: steps, delayMs: delayMs)
    }

    private func steps(toSeed seed: String) -> [JoinPlan.Step] {
        nodeNames.filter { $0 != seed }.map { JoinPlan.Step(joiner: $0, target: seed) }
    }

    /// The `[join.explicit]` pairs, in node order.
    private func explicitSteps(_ join: TopologyTableReader) throws(TopologyError) -> [JoinPlan.Step] {
        let example = "[join.explicit] \(nodeNames.count > 1 ? nodeNames[1] : "b") = \"\(nodeNames[0])\""
        guard let table = try join.table("explicit", example: example) else {
            throw join.error(.missingKey, "explicit", "plan \"explicit\" needs a [join.explicit] table", fix: "Add `\(example)`: each joiner = its target")
        }
        var steps: [JoinPlan.Step] = []
        for joiner in table.table.keys.sorted(by: { nodeIndex($0) < nodeIndex($1) }) {
            try requireNode(joiner, in: table, key: joiner)
            let example = "\(joiner) = \"\(nodeNames[0])\""
            let target = try table.require(table.string(joiner, example: example), joiner, example: example)
            try requireNode(target, in: table, key: joiner)
            guard target != joiner else {
                throw table.error(.invalidValue, joiner, "a node can't join itself", fix: "Name another node as its target, or remove the line")
            }
            steps.append(JoinPlan.Step(joiner: joiner, target: target))
        }
        return steps
    }

    private func nodeIndex(_ name: String) -> Int { nodeNames.firstIndex(of: name) ?? nodeNames.count }

    func requireNode(_ name: String, in table: TopologyTableReader, key: String) throws(TopologyError) {
        guard nodeNames.contains(name) else { throw unknownNode(name, in: table, key: key, names: nodeNames) }
    }

    // MARK: [[expect]]

    func parseExpectations(_ entries: [TopologyTableReader], schedule: [ScheduledAction]) throws(TopologyError) -> [Expectation] {
        var expectations: [Expectation] = []
        for entry in entries {
            let kindName = try entry.require(entry.choice("kind", ["members", "absent", "connected", "symmetric"]), "kind", example: "kind = \"members\"")
            let common = ["name", "kind", "within", "after"]
            let kind: Expectation.Kind
            if kindName == "members" {
                try entry.allowOnly(common + ["count", "nodes"])
                let count = try entry.require(entry.int("count", example: "count = \(nodeNames.count)"), "count", example: "count = \(nodeNames.count)")
                guard (1...nodeNames.count).contains(count) else {
                    throw entry.error(.invalidValue, "count", "\(count) members is impossible with \(nodeNames.count) nodes", fix: "Use a count from 1 to \(nodeNames.count)")
                }
                let only = try entry.stringArray("nodes", example: "nodes = [\"\(nodeNames[0])\"]")
                for name in only ?? [] { try requireNode(name, in: entry, key: "nodes") }
                kind = .members(count: count, nodes: only)
            } else if kindName == "connected" || kindName == "symmetric" {
                try entry.allowOnly(common)
                kind = .connected(symmetric: kindName == "symmetric")
            } else {
                try entry.allowOnly(common + ["node"])
                let node = try entry.require(entry.string("node", example: "node = \"\(nodeNames[0])\""), "node", example: "node = \"\(nodeNames[0])\"")
                try requireNode(node, in: entry, key: "node")
                kind = .absent(node: node)
            }
            let after = try entry.choice("after", ["start", "schedule"]).flatMap(Expectation.Anchor.init(rawValue:)) ?? .start
            let withinMs = try entry.duration("within") ?? timeoutMs
            guard withinMs > 0, withinMs <= timeoutMs else {
                throw entry.error(.invalidValue, "within", "the deadline must be after the start and at most the \(timeoutMs) ms timeout", fix: "Lower `within` or raise `timeout`")
            }
            if after == .schedule {
                guard let last = schedule.last else {
                    throw entry.error(.invalidValue, "after", "there is no [[schedule]] to wait for", fix: "Add a [[schedule]] entry, or use `after = \"start\"`")
                }
                guard withinMs > last.atMs else {
                    throw entry.error(.invalidValue, "within", "the deadline (\(withinMs) ms from start) is not after the last scheduled action (\(last.atMs) ms)", fix: "Raise `within`; it is measured from the start")
                }
            }
            let name = try entry.string("name", example: "name = \"all converge\"") ?? defaultName(kind)
            expectations.append(Expectation(name: name, kind: kind, withinMs: withinMs, after: after))
        }
        return expectations
    }

    private func defaultName(_ kind: Expectation.Kind) -> String {
        switch kind {
        case .members(let count, nil): return "every live node sees \(count) members"
        case .members(let count, let nodes?): return "\(nodes.joined(separator: ", ")) see \(count) members"
        case .absent(let node): return "\(node) is absent"
        case .connected(false): return "the live nodes form one connected overlay"
        case .connected(true): return "the live nodes form one connected overlay with symmetric views"
        }
    }
}
