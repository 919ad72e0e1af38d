import ArgumentParser
import Foundation
import Trellis
import TrellisWire

/// `trellis fault`: fault injection on a running node through its admin interface.
struct FaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault",
        abstract: "Inject faults into a running node: drop, delay, duplicate or reorder what it receives, or partition it.",
        discussion: """
            A node judges the messages it receives (application messages, requests, membership
            messages, heartbeat answers) by its fault plan: rules, tried in order, then an
            optional fault script. Rules select by sender (--from), receiver (--to) and
            --channel, with a --probability. With --cluster the plan goes to every member, so
            that --from/--to describe links anywhere in the cluster. The node must run with
            --admin HOST:PORT.
            """,
        subcommands: [Add.self, Script.self, Apply.self, Clear.self, List.self, Partition.self, Heal.self]
    )

    /// Options shared by the subcommands that change the plan.
    struct Target: ParsableArguments {
        @OptionGroup var admin: AdminOptions

        @Flag(help: "Apply to every member of the node's cluster, and report each node's result.")
        var cluster = false
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a rule to the node's fault plan.")

        enum Action: String, ExpressibleByArgument, CaseIterable {
            case drop, delay, duplicate, reorder
        }

        @OptionGroup var target: Target
        @Argument(help: "What to do to the messages selected: drop, delay, duplicate or reorder.")
        var action: Action
        @Option(help: "Only messages from this node (name or id); repeat for several.")
        var from: [String] = []
        @Option(help: "Only messages to this node (name or id); repeat for several.")
        var to: [String] = []
        @Option(help: "Only messages on this channel (membership, default, ...).")
        var channel: String?
        @Option(help: "The chance, 0 to 1, that a selected message is hit.")
        var probability: Double = 1
        @Option(name: .customLong("delay-ms"), help: "delay: milliseconds to hold each message.")
        var delayMs: Int?
        @Option(name: .customLong("jitter-ms"), help: "delay: up to this many more milliseconds, at random.")
        var jitterMs: Int = 0
        @Option(name: .customLong("window-ms"), help: "reorder: hold each message 0 to this many milliseconds.")
        var windowMs: Int = 50

        func run() async throws {
            var rule: [String: Any] = ["action": action.rawValue, "probability": probability, "jitter_ms": jitterMs, "window_ms": windowMs]
            if action == .delay {
                guard let delayMs else { throw ValidationError("delay needs --delay-ms, e.g. --delay-ms 200") }
                rule["delay_ms"] = delayMs
            }
            if !from.isEmpty { rule["from"] = from }
            if !to.isEmpty { rule["to"] = to }
            if let channel { rule["channel"] = channel }
            let client = try target.admin.client()
            var plan = try await currentPlan(client)
            plan["rules"] = (plan["rules"] as? [Any] ?? []) + [rule]
            try await install(plan, with: client, cluster: target.cluster)
        }
    }

    struct Script: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a fault script decide what no rule hits.")

        @OptionGroup var target: Target
        @Argument(help: "The fault script (see plugins/faults/).")
        var file: String

        func run() async throws {
            let source: String
            do {
                source = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            let client = try target.admin.client()
            var plan = try await currentPlan(client)
            plan["script"] = source
            plan["file"] = URL(fileURLWithPath: file).lastPathComponent
            try await install(plan, with: client, cluster: target.cluster)
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the node's fault plan with a JSON file: {\"rules\": [{\"action\": \"drop\", ...}]}.")

        @OptionGroup var target: Target
        @Argument(help: "The plan, as JSON.")
        var file: String

        func run() async throws {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            guard let plan = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw ValidationError("\(file) is not a JSON object like {\"rules\": [{\"action\": \"drop\", \"probability\": 0.1}]}")
            }
            try await install(plan, with: try target.admin.client(), cluster: target.cluster)
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop injecting faults (partitions stay until `heal`).")

        @OptionGroup var target: Target

        func run() async throws {
            let (status, reply) = try await target.admin.client().send("DELETE", "/faults" + (target.cluster ? "?cluster=1" : ""))
            try report(status, reply)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the node's fault plan, what it has done, and its partitions.")

        @OptionGroup var admin: AdminOptions

        func run() async throws {
            let reply = try await admin.client().succeed("GET", "/faults")
            let data = try JSONSerialization.data(withJSONObject: reply, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    struct Partition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut the node off from peers: connections to and from them close, new ones are refused.")

        @OptionGroup var admin: AdminOptions
        @Argument(help: "The peers to cut off, by name or id.")
        var peers: [String]

        func run() async throws {
            let body = try JSONSerialization.data(withJSONObject: ["peers": peers])
            let reply = try await admin.client().succeed("POST", "/partition", body: body)
            print("\(admin.node) cut off from \((reply["unreachable"] as? [String] ?? []).joined(separator: ", "))")
        }
    }

    struct Heal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End the node's partitions.")

        @OptionGroup var admin: AdminOptions

        func run() async throws {
            _ = try await admin.client().succeed("DELETE", "/partition")
            print("\(admin.node) healed: it can reach every peer again")
        }
    }
}

/// The node's plan as the admin interface gives it, ready to extend.
private func currentPlan(_ client: AdminClient) async throws -> [String: Any] {
    let reply = try await client.succeed("GET", "/faults")
    var plan: [String: Any] = ["rules": reply["rules"] ?? []]
    plan["script"] = reply["script_source"]
    plan["file"] = reply["script"]
    return plan
}

private func install(_ plan: [String: Any], with client: AdminClient, cluster: Bool) async throws {
    let body = try JSONSerialization.data(withJSONObject: plan)
    let (status, reply) = try await client.send("POST", "/faults" + (cluster ? "?cluster=1" : ""), body: body)
    try report(status, reply)
}

/// Prints each node's answer; exits 1 when any refused.
private func report(_ status: Int, _ reply: [String: Any]) throws {
    guard let results = reply["results"] as? [[String: Any]] else {
        throw AdminError(description: "\(reply["error"] ?? "status \(status)")")
    }
    var rules = (reply["rules"] as? [String]).map { $0.isEmpty ? "no rules" : $0.joined(separator: "; ") } ?? ""
    if let script = reply["script"] as? String { rules += ", then \(script)" }
    for result in results {
        let who = result["node"] as? String ?? "?"
        if result["ok"] as? Bool == true {
            print("\(who): \(rules)")
        } else {
            print("refused \(who): \(result["error"] ?? "?"); it keeps its plan")
        }
    }
    if status != 200 { throw ExitCode(1) }
}
