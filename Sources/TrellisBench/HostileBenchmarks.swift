import ArgumentParser
import Foundation
import TrellisLua
import TrellisWire

/// `TrellisBench hostile`: what each hostile script of the test corpus costs a node under the
/// production limits: how long the node is busy until the script is stopped, and how much
/// memory its VM holds afterwards.
struct HostileBenchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostile", abstract: "Cost of containing each hostile script, under the default limits.")

    @Option(help: "The hostile script corpus.")
    var corpus = "Tests/TrellisLuaTests/HostileScripts"

    @Option(help: "Runs per script (the median is reported).")
    var runs = 3

    func run() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus).filter { $0.hasSuffix(".lua") }.sorted()
        guard !files.isEmpty else { throw ValidationError("no .lua files in \(corpus); run from the repository root") }
        let limits = ScriptLimits()
        print("limits: \(limits.instructionBudget) instructions per callback, \(limits.memoryCap >> 20) MiB per VM")
        print(Self.row("script", "stopped as", "busy ms", "VM KiB"))
        var worst = 0.0
        for file in files {
            let source = try String(contentsOfFile: "\(corpus)/\(file)", encoding: .utf8)
            var samples: [Double] = []
            var outcome = ""
            var memory = 0
            for _ in 0..<runs {
                let start = ContinuousClock.now
                (outcome, memory) = Self.drive(source, file: file, limits: limits)
                let elapsed = (ContinuousClock.now - start).components
                samples.append(Double(elapsed.seconds) * 1e3 + Double(elapsed.attoseconds) / 1e15)
            }
            let busy = median(samples)
            worst = max(worst, busy)
            print(Self.row(file, outcome, String(format: "%.1f", busy), "\(memory >> 10)"))
        }
        print(String(format: "worst: %.1f ms of one callback's time, on the thread that runs the script", worst))
    }

    private static func row(_ script: String, _ outcome: String, _ busy: String, _ memory: String) -> String {
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        return pad(script, 28) + pad(outcome, 42) + String(repeating: " ", count: max(0, 9 - busy.count)) + busy
            + String(repeating: " ", count: max(0, 9 - memory.count)) + memory
    }

    /// Loads the script and runs init, join, on_message, on_tick and on_down until one fails;
    /// what stopped it (or `harmless`) and the VM's bytes afterwards.
    static func drive(_ source: String, file: String, limits: ScriptLimits) -> (String, Int) {
        let peer = "p1@127.0.0.1:7101"
        let script: OverlayScript
        do {
            script = try OverlayScript(source: source, fileName: file, limits: limits)
        } catch {
            return ("\(error.kind.rawValue) in load", 0)
        }
        do {
            _ = try script.start(OverlayContext(selfID: "me@127.0.0.1:7100", config: .map([:]), now: 0))
            _ = try script.join(peer, now: 1)
            _ = try script.receive(.map(["type": "hello"]), from: peer, now: 2)
            _ = try script.tick(now: 3)
            _ = try script.connectionDown(peer, reason: "connection lost", now: 4)
        } catch {
            return ("\(error.kind.rawValue) in \(error.callback)", script.memoryUsed)
        }
        return ("harmless", script.memoryUsed)
    }
}
