import Foundation

/// Writes pictures of a run's final members graph: what `--svg FILE` and `--png FILE` do.
public enum MembersGraphFiles {
    /// Writes `graph` as SVG to `path`.
    public static func writeSVG(_ graph: MembersGraph, to path: String) throws(PictureError) {
        do {
            try MembersGraphSVG.render(graph).write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw .cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    /// Renders `dot` (a DOT graph, see ``MembersGraphDot``) to a PNG file at `path` with
    /// Graphviz's `dot -Tpng`; throws ``PictureError/graphvizMissing`` when `dot` is not on `PATH`.
    public static func writePNG(dot: String, to path: String) throws(PictureError) {
        guard let graphviz = executable(named: "dot") else { throw .graphvizMissing }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-graph-\(UUID().uuidString).dot")
        do {
            try dot.write(to: input, atomically: true, encoding: .utf8)
        } catch {
            throw .cannotWrite(path: input.path, reason: error.localizedDescription)
        }
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: graphviz)
        process.arguments = ["-Tpng", "-o", path, input.path]
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw .graphvizFailed(status: -1, message: "cannot start \(graphviz): \(error.localizedDescription)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .graphvizFailed(status: process.terminationStatus, message: message.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The path of the executable `name` in the first folder of `PATH` that has one.
    static func executable(named name: String) -> String? {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        return folders.lazy.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
