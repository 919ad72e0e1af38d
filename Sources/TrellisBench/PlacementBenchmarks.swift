import ArgumentParser
import Foundation
import TrellisLua
import TrellisPlacement
import TrellisWire

/// `TrellisBench placement`: how many shards move when a cluster grows from n to n + 1 nodes
/// under modulo.lua and rendezvous.lua, beside rendezvous's ideal 1/(n + 1), and what one
/// table costs with each script, with region.lua (one `assign` call; the nodes have no
/// region, so it is rendezvous over all of them) and with the built-in `RendezvousPlacement`.
struct PlacementBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placement", abstract: "Shard movement and table cost of the placement policies."
    )

    @Option(help: "Shards per table.")
    var shards = 4096

    @Option(help: "The folder holding modulo.lua, rendezvous.lua and region.lua.")
    var plugins = "plugins/placement"

    @Option(help: "Timed computations of each table; the table shows the median.")
    var runs = 5

    func run() throws {
        let modulo = try LuaPlacement(contentsOf: "\(plugins)/modulo.lua")
        let rendezvous = try LuaPlacement(contentsOf: "\(plugins)/rendezvous.lua")
        let region = try LuaPlacement(contentsOf: "\(plugins)/region.lua")
        let builtIn = RendezvousPlacement()
        var rows = [[
            "n → n+1", "modulo moved", "rendezvous moved", "1/(n+1)",
            "modulo.lua ms", "rendezvous.lua ms", "region.lua ms", "RendezvousPlacement ms",
        ]]
        for n in 2...16 {
            let (before, after) = (nodes(n), nodes(n + 1))
            let moduloMoved = try moved(modulo, from: before, to: after)
            let rendezvousMoved = try moved(rendezvous, from: before, to: after)
            guard try rendezvous.table(capability: "game", nodes: after, shardCount: shards)
                == builtIn.table(capability: "game", nodes: after, shardCount: shards)
            else { throw ValidationError("rendezvous.lua and RendezvousPlacement disagree for \(n + 1) nodes") }
            rows.append([
                "\(n) → \(n + 1)", percent(moduloMoved), percent(rendezvousMoved), percent(1 / Double(n + 1)),
                try milliseconds(modulo, after), try milliseconds(rendezvous, after), try milliseconds(region, after),
                try milliseconds(builtIn, after),
            ])
        }
        print(render(rows))
        print("(\(shards) shards; times are the median of \(runs) computations of the n+1 table, one owner call per shard for modulo.lua and rendezvous.lua)")
    }

    /// Nodes 1...count serving the capability `game`.
    private func nodes(_ count: Int) -> [PlacementNode] {
        (1...count).map { PlacementNode(id: PeerID(name: "n\($0)", host: "127.0.0.1", port: 7100 + $0), capabilities: ["game"]) }
    }

    private func moved(_ policy: any PlacementPolicy, from before: [PlacementNode], to after: [PlacementNode]) throws -> Double {
        let old = try policy.table(capability: "game", nodes: before, shardCount: shards)
        return old.movedFraction(to: try policy.table(capability: "game", nodes: after, shardCount: shards))
    }

    private func milliseconds(_ policy: any PlacementPolicy, _ nodes: [PlacementNode]) throws -> String {
        var samples: [Double] = []
        for _ in 0..<max(runs, 1) {
            let start = ContinuousClock.now
            _ = try policy.table(capability: "game", nodes: nodes, shardCount: shards)
            let elapsed = ContinuousClock.now - start
            samples.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
        }
        return String(format: "%.2f", median(samples))
    }

    private func percent(_ fraction: Double) -> String { String(format: "%.1f %%", fraction * 100) }

    /// Rows as aligned columns, the first row as the header.
    private func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        let lines = rows.map { cells in
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " | ")
        }
        return ([lines[0], widths.map { String(repeating: "-", count: $0) }.joined(separator: "-|-")] + lines.dropFirst())
            .joined(separator: "\n")
    }
}
