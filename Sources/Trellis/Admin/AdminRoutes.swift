import Foundation
import NIOHTTP1
import TrellisFaults
import TrellisWire

/// What the admin interface answers, route by route. Every answer is a JSON object; errors
/// carry `error` saying what to change.
enum AdminRoutes {
    static func answer(_ head: HTTPRequestHead, body: String, node: TrellisNode, token: String) async -> (HTTPResponseStatus, [String: Any]) {
        guard isAuthorized(head, token: token) else { return (.unauthorized, unauthorized) }
        let url = URLComponents(string: head.uri)
        let file = url?.queryItems?.first { $0.name == "file" }?.value
        let cluster = url?.queryItems?.first { $0.name == "cluster" }?.value == "1"
        switch (head.method, url?.path ?? head.uri) {
        case (.GET, "/status"):
            return (.ok, await status(of: node))
        case (.POST, let path) where path.hasPrefix("/swap/"):
            return await swap(String(path.dropFirst("/swap/".count)), source: body, file: file, cluster: cluster, on: node)
        case (.GET, "/faults"):
            return (.ok, faults(await node.faultStatus))
        case (.POST, "/faults"):
            do {
                return await install(try FaultPlan(value: try json(body)), cluster: cluster, on: node)
            } catch {
                return (.badRequest, ["error": "\(error)"])
            }
        case (.DELETE, "/faults"):
            return await install(.none, cluster: cluster, on: node)
        case (.POST, "/partition"):
            do {
                let names = try json(body)["peers"]?.arrayValue?.compactMap(\.stringValue) ?? []
                guard !names.isEmpty else { throw FaultRuleError(description: "send {\"peers\": [\"name or id\", ...]}") }
                let peers = try await node.knownPeers(named: names)
                await node.setUnreachable(peers)
                return (.ok, ["ok": true, "unreachable": peers.map(\.description).sorted()])
            } catch {
                return (.badRequest, ["error": "\(error)"])
            }
        case (.DELETE, "/partition"):
            await node.setUnreachable([])
            return (.ok, ["ok": true, "unreachable": [String]()])
        default:
            return (.notFound, [
                "error": "no \(head.method) \(head.uri); try GET /status, GET /metrics, POST /swap/{overlay,placement,actor}, GET|POST|DELETE /faults, POST|DELETE /partition",
            ])
        }
    }

    /// The answer as the bytes of one JSON object, keys sorted.
    static func encode(_ json: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    private static func json(_ body: String) throws(FaultRuleError) -> Value {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) else {
            throw FaultRuleError(description: "the body is not a JSON object")
        }
        return Value(jsonObject: object)
    }

    private static func status(of node: TrellisNode) async -> [String: Any] {
        let faults = await node.faultStatus
        return [
            "id": "\(node.id)",
            "members": await node.members.map(\.description),
            "overlay": await node.overlayVersion,
            "placement": await node.placementPolicyName,
            "script_errors": await node.scriptErrors,
            "capabilities": await node.capabilities,
            "faults": faults.plan.rules.map(\.description) + (faults.plan.script.map { ["script \($0.fileName)"] } ?? []),
            "unreachable": faults.unreachable.map(\.description),
        ]
    }

    private static func faults(_ status: FaultStatus) -> [String: Any] {
        var answer: [String: Any] = [
            "rules": status.plan.rules.map(\.value.jsonObject),
            "counts": status.counts.value.jsonObject,
            "unreachable": status.unreachable.map(\.description),
        ]
        if let script = status.plan.script {
            answer["script"] = script.fileName
            answer["script_source"] = script.source
        }
        if let error = status.lastScriptError { answer["last_script_error"] = error }
        return answer
    }

    private static func install(_ plan: FaultPlan, cluster: Bool, on node: TrellisNode) async -> (HTTPResponseStatus, [String: Any]) {
        let results: [NodeFaultResult]
        if cluster {
            results = await node.rollOutFaults(plan)
        } else {
            do {
                try await node.injectFaults(plan)
                results = [NodeFaultResult(node: node.id, error: nil)]
            } catch {
                results = [NodeFaultResult(node: node.id, error: error.description)]
            }
        }
        let entries: [[String: Any]] = results.map { result in
            result.error.map { ["node": "\(result.node)", "ok": false, "error": $0] } ?? ["node": "\(result.node)", "ok": true]
        }
        let allOK = results.allSatisfy { $0.error == nil }
        var answer: [String: Any] = ["ok": allOK, "rules": plan.rules.map(\.description), "results": entries]
        answer["script"] = plan.script?.fileName
        return (allOK ? .ok : .conflict, answer)
    }

    private static func swap(_ kind: String, source: String, file: String?, cluster: Bool, on node: TrellisNode) async -> (HTTPResponseStatus, [String: Any]) {
        if cluster {
            let results = await node.rollOut(kind: kind, source: source, fileName: file ?? "\(kind).lua")
            let entries: [[String: Any]] = results.map { result in
                switch result.outcome {
                case .success(let report): return ["node": "\(result.node)", "ok": true, "before": report.before, "after": report.after]
                case .failure(let refusal): return ["node": "\(result.node)", "ok": false, "error": refusal.description]
                }
            }
            let allOK = entries.allSatisfy { $0["ok"] as? Bool == true }
            return (allOK ? .ok : .conflict, ["ok": allOK, "kind": kind, "results": entries])
        }
        switch await node.swap(kind, source: source, fileName: file ?? "\(kind).lua") {
        case .success(let report):
            return (.ok, ["ok": true, "node": "\(node.id)", "kind": kind, "before": report.before, "after": report.after,
                          "members": report.members.map(\.description)])
        case .failure(let refusal):
            return (.conflict, ["ok": false, "node": "\(node.id)", "kind": kind, "error": refusal.description])
        }
    }
}
