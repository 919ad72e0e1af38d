import TrellisFaults
import TrellisLua

/// Parses `[[schedule]]` (node lifecycle and network faults) and `[[report]]`.
struct TopologyScheduleParser {
    /// The nodes that run from the start.
    let plans: TopologyPlanParser

    var timeoutMs: Int { plans.timeoutMs }

    /// The actions sorted by time (file order among equal times), and the names of the nodes
    /// that `add` actions start, with when.
    func parse(_ entries: [TopologyTableReader]) throws(TopologyError) -> (actions: [ScheduledAction], added: [(name: String, atMs: Int)]) {
        var parsed: [(action: ScheduledAction, table: TopologyTableReader)] = []
        for entry in entries {
            try entry.allowOnly(["at", "action", "node", "nodes", "fraction", "groups", "count", "via", "overlay", "rules", "script"])
            let atMs = try entry.require(entry.duration("at"), "at", example: "at = \"2s\"")
            guard atMs < timeoutMs else {
                throw entry.error(.invalidValue, "at", "\(atMs) ms is not before the \(timeoutMs) ms timeout", fix: "Schedule it earlier or raise `timeout`")
            }
            let actions = ScheduledAction.Action.allCases.map(\.rawValue)
            let name = try entry.require(entry.choice("action", actions), "action", example: "action = \"leave\"")
            parsed.append((try action(ScheduledAction.Action(rawValue: name)!, at: atMs, entry), entry))
        }
        // A stable sort: entries at the same time keep their file order.
        var ordered = parsed.enumerated().sorted { ($0.element.action.atMs, $0.offset) < ($1.element.action.atMs, $1.offset) }.map(\.element)
        var added: [(name: String, atMs: Int)] = []
        var used = Set(plans.nodeNames)
        var number = plans.nodeNames.count
        for index in ordered.indices where ordered[index].action.action == .add {
            let count = ordered[index].action.nodes.count
            ordered[index].action.nodes = (0..<count).map { _ in
                repeat { number += 1 } while used.contains("n\(number)")
                used.insert("n\(number)")
                added.append(("n\(number)", ordered[index].action.atMs))
                return "n\(number)"
            }
        }
        try checkLifecycle(ordered, added: Set(added.map(\.name)))
        return (ordered.map(\.action), added)
    }

    private func action(_ kind: ScheduledAction.Action, at atMs: Int, _ entry: TopologyTableReader) throws(TopologyError) -> ScheduledAction {
        var action = ScheduledAction(atMs: atMs, action: kind, nodes: [])
        let allowed: Set<String>
        switch kind {
        case .leave, .restart:
            allowed = ["node", "nodes"]
            action.nodes = try targets(of: entry)
        case .kill:
            allowed = ["node", "nodes", "fraction"]
            action.fraction = try fraction(entry)
            if action.fraction == nil { action.nodes = try targets(of: entry) }
        case .partition:
            allowed = ["groups", "fraction"]
            action.fraction = try fraction(entry)
            if action.fraction == nil { action.groups = try groups(entry) }
        case .heal:
            allowed = []
        case .add:
            allowed = ["count", "via"]
            let count = try entry.require(entry.int("count", example: "count = 3"), "count", example: "count = 3")
            guard (1...Topology.maximumNodes).contains(count) else {
                throw entry.error(.invalidValue, "count", "\(count) new nodes is out of range", fix: "Use a count from 1 to \(Topology.maximumNodes)")
            }
            action.nodes = Array(repeating: "", count: count)
            action.via = try entry.string("via", example: "via = \"\(plans.nodeNames[0])\"")
            if let via = action.via { try plans.requireNode(via, in: entry, key: "via") }
        case .swap:
            allowed = ["overlay", "node", "nodes"]
            let example = "overlay = \"../../plugins/overlays/hyparview.lua\""
            action.scriptPath = try entry.existingScript(entry.require(entry.string("overlay", example: example), "overlay", example: example), key: "overlay")
            if entry.has("node") || entry.has("nodes") { action.nodes = try targets(of: entry) }
        case .faults:
            allowed = ["rules", "script", "node", "nodes"]
            action.faults = try faultPlan(entry)
            if entry.has("node") || entry.has("nodes") { action.nodes = try targets(of: entry) }
        }
        let given = ["node", "nodes", "fraction", "groups", "count", "via", "overlay", "rules", "script"].filter(entry.has)
        if let extra = given.first(where: { !allowed.contains($0) }) {
            let keys = allowed.isEmpty ? "no other keys" : allowed.sorted().map { "`\($0)`" }.joined(separator: ", ")
            throw entry.error(.unknownKey, extra, "`\(extra)` doesn't apply to action \"\(kind.rawValue)\"", fix: "Action \"\(kind.rawValue)\" takes \(keys)")
        }
        return action
    }

    /// `rules = [{ action = "drop", probability = 0.1 }, ...]` and/or `script = "faults.lua"`;
    /// neither: no faults from now on.
    private func faultPlan(_ entry: TopologyTableReader) throws(TopologyError) -> FaultPlan {
        var plan = FaultPlan()
        let example = "rules = [{ action = \"drop\", channel = \"default\", probability = 0.1 }]"
        if let raw = entry.table["rules"] {
            let value = try TopologyConfig.value(of: raw, at: entry.path.appending("rules"), context: entry.context)
            do {
                plan = try FaultPlan(value: .map(["rules": value]))
            } catch {
                throw entry.error(.invalidValue, "rules", error.description, fix: "Write rules like `\(example)`")
            }
        }
        if let path = try entry.string("script", example: "script = \"../../plugins/faults/lossy_link.lua\"") {
            let resolved = try entry.existingScript(path, key: "script")
            do {
                let file = try ScriptFile(contentsOf: resolved)
                plan.script = FaultPlan.Script(source: file.source, fileName: file.fileName)
                _ = try FaultDecider(plan: plan, seed: 0)
            } catch {
                throw entry.error(.invalidValue, "script", error.description, fix: "Fix the fault script; `trellis check` shows the same report")
            }
        }
        return plan
    }

    private func fraction(_ entry: TopologyTableReader) throws(TopologyError) -> Double? {
        guard let fraction = try entry.number("fraction", example: "fraction = 0.2") else { return nil }
        guard fraction > 0, fraction < 1 else {
            throw entry.error(.invalidValue, "fraction", "\(fraction) is not strictly between 0 and 1", fix: "Write e.g. `fraction = 0.2` for 20 % of the running nodes")
        }
        if entry.has("node") || entry.has("nodes") || entry.has("groups") {
            let other = ["node", "nodes", "groups"].first(where: entry.has)!
            throw entry.error(.invalidValue, other, "both `fraction` and `\(other)` are given", fix: "Keep exactly one of them")
        }
        return fraction
    }

    private func groups(_ entry: TopologyTableReader) throws(TopologyError) -> [[String]] {
        let example = "groups = [[\"\(plans.nodeNames[0])\"], [\"\(plans.nodeNames.last!)\"]]"
        let groups = try entry.require(entry.stringArrays("groups", example: example), "groups", example: example)
        var seen: Set<String> = []
        for name in groups.joined() {
            guard seen.insert(name).inserted else {
                throw entry.error(.duplicateName, "groups", "\"\(name)\" is in two groups", fix: "Put each node in one group at most")
            }
        }
        guard !groups.isEmpty, !groups.contains(where: \.isEmpty) else {
            throw entry.error(.invalidValue, "groups", "a partition needs non-empty groups", fix: "Write it like `\(example)`")
        }
        return groups
    }

    private func targets(of entry: TopologyTableReader) throws(TopologyError) -> [String] {
        let names = plans.nodeNames
        let single = try entry.string("node", example: "node = \"\(names[0])\"")
        let many = try entry.stringArray("nodes", example: "nodes = [\"\(names[0])\"]")
        let key = many == nil ? "node" : "nodes"
        let targets: [String]
        switch (single, many) {
        case (let name?, nil): targets = [name]
        case (nil, let list?) where !list.isEmpty: targets = list
        case (_?, _?):
            throw entry.error(.invalidValue, "nodes", "both `node` and `nodes` are given", fix: "Keep exactly one of them")
        default:
            throw entry.error(.missingKey, key, "no node to act on", fix: "Add `node = \"\(names[0])\"` or a non-empty `nodes = [...]`")
        }
        var seen: Set<String> = []
        for name in targets {
            guard seen.insert(name).inserted else {
                throw entry.error(.duplicateName, key, "\"\(name)\" is listed twice", fix: "List each node once")
            }
        }
        return targets
    }

    /// Replays the schedule: only running nodes can leave or be killed, only killed or departed
    /// nodes restart, and every node named exists (nodes that `add` starts exist from then on).
    private func checkLifecycle(_ ordered: [(action: ScheduledAction, table: TopologyTableReader)], added: Set<String>) throws(TopologyError) {
        enum State { case running, left, killed, notYetAdded }
        var states = Dictionary(uniqueKeysWithValues: plans.nodeNames.map { ($0, State.running) })
        for name in added { states[name] = .notYetAdded }
        let all = plans.nodeNames + added.sorted()
        for (action, table) in ordered {
            let key = action.nodes.count == 1 && table.has("node") ? "node" : "nodes"
            if action.action == .add {
                for node in action.nodes { states[node] = .running }
                continue
            }
            for node in action.groups.joined() where states[node] == nil {
                throw unknownNode(node, in: table, key: "groups", names: all)
            }
            for node in action.nodes {
                guard let state = states[node] else { throw unknownNode(node, in: table, key: key, names: all) }
                switch (action.action, state) {
                case (.leave, .running): states[node] = .left
                case (.kill, .running): states[node] = .killed
                case (.restart, .killed), (.restart, .left): states[node] = .running
                case (.swap, .running), (.faults, .running): break
                case (_, .notYetAdded):
                    throw table.error(
                        .invalidValue, key, "\(node) can't \(action.action.rawValue) at \(action.atMs) ms: it is added later",
                        fix: "Schedule this after the `add` that starts \(node)")
                case (.restart, _):
                    throw table.error(
                        .invalidValue, key, "\(node) can't restart at \(action.atMs) ms: only killed or departed nodes restart",
                        fix: "Add an earlier `action = \"kill\"` or `\"leave\"` for \(node)")
                default:
                    throw table.error(
                        .invalidValue, key, "\(node) can't \(action.action.rawValue) at \(action.atMs) ms: it has already \(state == .left ? "left" : "been killed")",
                        fix: "Remove this action, or `restart` the node before it")
                }
            }
        }
    }

    /// The `[[report]]` times, sorted.
    func parseReports(_ entries: [TopologyTableReader]) throws(TopologyError) -> [ReportPoint] {
        var reports: [ReportPoint] = []
        for entry in entries {
            try entry.allowOnly(["at", "broadcasts"])
            let atMs = try entry.require(entry.duration("at"), "at", example: "at = \"10s\"")
            guard atMs <= timeoutMs else {
                throw entry.error(.invalidValue, "at", "\(atMs) ms is after the \(timeoutMs) ms timeout", fix: "Report earlier or raise `timeout`")
            }
            let broadcasts = try entry.int("broadcasts", example: "broadcasts = 20") ?? 20
            guard (1...10_000).contains(broadcasts) else {
                throw entry.error(.invalidValue, "broadcasts", "\(broadcasts) is out of range", fix: "Use from 1 to 10000 floods")
            }
            reports.append(ReportPoint(atMs: atMs, broadcasts: broadcasts))
        }
        return reports.sorted { $0.atMs < $1.atMs }
    }
}
