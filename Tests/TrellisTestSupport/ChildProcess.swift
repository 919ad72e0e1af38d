import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process whose signals work. `Foundation.Process` starts a child with the signal
/// mask of the calling thread, and the test runner's threads block most signals, so such a
/// child would never see SIGHUP or SIGTERM: this one is started with the mask emptied for the
/// moment of the spawn. (Process also keeps the test's descriptors, a node's listening socket
/// among them, out of the child.) Its output, stdout and stderr, is collected.
public final class ChildProcess {
    private let process = Process()
    private let output = OutputBuffer()

    public init(_ path: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }  // end of file: the child exited
            output.append(String(decoding: data, as: UTF8.self))
        }
        var none = sigset_t()
        var saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
    }

    /// Everything the child wrote so far.
    public var outputText: String { output.contents }

    public var isRunning: Bool { process.isRunning }

    public func send(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Sends SIGTERM, then SIGKILL if it still runs after a second; returns once it exited
    /// (or after 3 s at most).
    public func stop() {
        send(SIGTERM)
        for _ in 0..<50 {
            guard isRunning else { return }
            usleep(20_000)
        }
        send(SIGKILL)
        for _ in 0..<400 {
            guard isRunning else { return }
            usleep(5_000)
        }
    }
}

extension ChildProcess {
    /// The path of the executable `name`, looked for in `directories`, then in `PATH`.
    public static func locate(_ name: String, in directories: [String]) throws(ExecutableNotFound) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").map(String.init) ?? []
        for directory in directories + path where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
            return "\(directory)/\(name)"
        }
        throw ExecutableNotFound(name: name)
    }
}

/// No executable of that name in the usual directories or in `PATH`.
public struct ExecutableNotFound: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "\(name) not found in the system directories or PATH" }
}

/// A child's output, written by the pipe's reader thread.
final class OutputBuffer: Sendable {
    private let text = Mutex("")

    func append(_ more: String) { text.withLock { $0 += more } }
    var contents: String { text.withLock { $0 } }
}
