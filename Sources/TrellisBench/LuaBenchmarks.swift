import ArgumentParser
import Foundation
import TrellisFaults
import TrellisLua
import TrellisWire

/// `TrellisBench lua`: what one overlay callback costs, from Swift through the sandbox and
/// back: the floor (a callback that returns its state), and HyParView handling a shuffle;
/// and what fault injection costs per message, with rules only and with a fault script.
struct LuaBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "lua", abstract: "Cost of overlay callbacks in the Lua host.")

    @Option(help: "Callbacks per measurement.")
    var calls = 200_000

    @Option(help: "The HyParView script.")
    var hyparview = "plugins/overlays/hyparview.lua"

    func run() throws {
        let floor = """
            return { name = "floor", version = 1,
              init = function(ctx) return { n = 0 } end,
              join = function(s) return s end, leave = function(s) return s end,
              on_message = function(s, from, msg) return s end, on_tick = function(s) return s end }
            """
        let peers = (1...40).map { "n\($0)@127.0.0.1:\(7000 + $0)" }
        let context = OverlayContext(selfID: peers[0], config: .map([]), now: 0, tags: [:])
        let empty = try OverlayScript(source: floor, fileName: "floor.lua")
        _ = try empty.start(context)
        report("callback returning its state", try measure { _ = try empty.receive(.int(1), from: peers[1], now: 0) })

        let overlay = try OverlayScript(contentsOf: hyparview, seed: 1)
        _ = try overlay.start(context)
        _ = try overlay.join(peers[1], now: 0)
        for (index, peer) in peers.dropFirst(2).enumerated() {
            _ = try overlay.receive(.map(["type": "forward_join", "node": .string(peer), "ttl": .int(index % 2 == 0 ? 3 : 0)]), from: peers[1], now: 0)
        }
        let shuffle = Value.map([
            "type": "shuffle", "origin": .string(peers[9]), "ttl": .int(1),
            "nodes": .array(peers[10..<18].map { .string($0) }),
        ])
        report("hyparview on_message(shuffle)", try measure { _ = try overlay.receive(shuffle, from: peers[1], now: 0) })
        report("hyparview on_tick", try measure { _ = try overlay.tick(now: 1_000) })

        let (a, b) = (PeerID(name: "n1", host: "127.0.0.1", port: 7001), PeerID(name: "n2", host: "127.0.0.1", port: 7002))
        let rules = [FaultRule(.drop, from: ["n9"]), FaultRule(.delay(milliseconds: 5, jitter: 5), to: ["n7"]), FaultRule(.duplicate, channel: "other")]
        let missed = try FaultDecider(plan: FaultPlan(rules: rules), seed: 1)
        report("fault rules, 3 rules none hit", try measure { _ = missed.verdict(from: a, to: b, channel: "default") { .int(1) } })
        let source = "return { name = 'b', version = 1, decide = function(from, to, channel, message) return 'deliver' end }"
        let scripted = try FaultDecider(plan: FaultPlan(script: .init(source: source, fileName: "b.lua")), seed: 1)
        report("fault script decide", try measure { _ = scripted.verdict(from: a, to: b, channel: "default") { .int(1) } })
    }

    private func measure(_ body: () throws -> Void) throws -> Double {
        let start = ContinuousClock.now
        for _ in 0..<calls { try body() }
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
    }

    private func report(_ name: String, _ micros: Double) {
        print(String(format: "%-34@ %8.2f µs/call  %10.0f calls/s", name as NSString, micros / Double(calls), Double(calls) / micros * 1e6))
    }
}
