import Foundation
import NIOConcurrencyHelpers
import XCTest

/// A `trellis node` child process whose output lines are collected as they arrive.
final class NodeProcess {
    /// The `trellis` binary next to the test bundle (`scripts/test` builds it first).
    static var binary: URL {
        get throws {
            let candidates = [
                Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent("trellis"),
                URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                    .deletingLastPathComponent().appendingPathComponent(".build/debug/trellis"),
            ].compactMap { $0 }
            guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
                throw NodeProcessError.missingBinary
            }
            return found
        }
    }

    enum NodeProcessError: Error, CustomStringConvertible {
        case missingBinary
        case didNotStart([String])

        var description: String {
            switch self {
            case .missingBinary: return "the trellis binary is not built: run `swift build --product trellis` (scripts/test does)"
            case .didNotStart(let output): return "trellis node printed no 'listening' line; output: \(output)"
            }
        }
    }

    let process: Process
    private let lines = NIOLockedValueBox<[String]>([])

    /// Runs `trellis node` with `arguments`; through `launcher` if given, a command prefix
    /// such as `["/usr/sbin/ip", "netns", "exec", "ns1"]` (which must exec the node, not fork it,
    /// so that `stop()` reaches it).
    init(
        _ arguments: [String], cookie: String = "test-cookie", environment extra: [String: String] = [:],
        launcher: [String] = []
    ) throws {
        process = Process()
        let command = launcher + [try Self.binary.path, "node"] + arguments
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        var environment = ProcessInfo.processInfo.environment
        environment["TRELLIS_COOKIE"] = cookie
        environment.merge(extra) { $1 }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let lines = self.lines
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            lines.withLockedValue { $0 += text.split(separator: "\n").map(String.init) }
        }
        try process.run()
    }

    var output: [String] { lines.withLockedValue { $0 } }

    /// Waits until a line satisfies `predicate`; returns it, or `nil` after `timeout`.
    func waitForLine(timeout: Duration, after index: Int = 0, _ predicate: (String) -> Bool) async -> String? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = output.dropFirst(index).first(where: predicate) { return line }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// The node's id from its `listening` line.
    func id(timeout: Duration = .seconds(10)) async throws -> String {
        guard let line = await waitForLine(timeout: timeout, { $0.hasPrefix("listening ") }) else {
            throw NodeProcessError.didNotStart(output)
        }
        return String(line.dropFirst("listening ".count))
    }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    func stop() {
        if process.isRunning { signal(SIGKILL) }
        process.waitUntilExit()
    }
}
