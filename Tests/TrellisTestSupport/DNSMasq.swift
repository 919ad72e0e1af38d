import Foundation
import XCTest

/// A real DNS server for tests: dnsmasq on 127.0.0.1 (or another address, in a network
/// namespace of the test's), on a port of its own, serving only the records a test gives it
/// (`--no-resolv --no-hosts`; names under `trellis.test` are local, so unknown ones are
/// NXDOMAIN).
///
/// It runs under `timeout 60`, so it dies even if the test process crashes; `stop()` (call it
/// from `tearDown`) ends it at once. A records come from a hosts file that `setHosts`
/// rewrites and reloads with SIGHUP; SRV records are flags, so `restart` changes them.
public final class DNSMasq {
    public private(set) var port = 0
    /// The address dnsmasq listens on.
    public let address: String
    private let launcher: [String]
    private let directory: URL
    private var hostsFile: URL { directory.appendingPathComponent("hosts") }
    private var process: ChildProcess?

    /// Starts dnsmasq serving `hosts` (hosts-file lines) and `srv` (`--srv-host` values, e.g.
    /// `_trellis._tcp.trellis.test,n1.trellis.test,7101`), listening on `address`. `launcher`
    /// is a command prefix that runs it, e.g. `["/usr/sbin/ip", "netns", "exec", "ns1"]` to
    /// run it in network namespace `ns1` (which must have `address`).
    ///
    /// - Throws: `XCTSkip` when dnsmasq is not installed, unless `CI=true` (then it fails:
    ///   `scripts/setup` installs it).
    public init(hosts: String, srv: [String] = [], address: String = "127.0.0.1", launcher: [String] = []) throws {
        self.address = address
        self.launcher = launcher
        let executable = try Self.executable()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("trellis-dnsmasq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try hosts.write(to: hostsFile, atomically: true, encoding: .utf8)
        // A port taken by someone else makes dnsmasq exit at once: try a few.
        var failures: [String] = []
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...60_000)
            switch try launch(executable, port: port, srv: srv) {
            case nil:
                self.port = port
                return
            case let failure?:
                failures.append(failure)
            }
        }
        try? FileManager.default.removeItem(at: directory)
        throw DNSMasqError("dnsmasq did not start on any of 5 ports:\n\(failures.joined(separator: "\n"))")
    }

    /// The server address for a resolver: `<address>:<port>`.
    public var server: String { "\(address):\(port)" }

    /// Replaces the hosts file and returns once dnsmasq has read it again.
    public func setHosts(_ hosts: String) throws {
        guard let process else { throw DNSMasqError("dnsmasq is not running") }
        try hosts.write(to: hostsFile, atomically: true, encoding: .utf8)
        let reads = readsOfHosts(process)
        process.send(SIGHUP)  // `timeout` passes it on to dnsmasq
        try waitFor("dnsmasq to reload its hosts file", process) { self.readsOfHosts(process) > reads }
    }

    /// Stops dnsmasq and starts it again on the same port with other SRV records.
    public func restart(srv: [String]) throws {
        process?.stop()
        process = nil
        if let failure = try launch(try Self.executable(), port: port, srv: srv) {
            throw DNSMasqError("dnsmasq did not start again on port \(port): \(failure)")
        }
    }

    /// Stops dnsmasq (and its `timeout` wrapper) and removes its files.
    public func stop() {
        process?.stop()
        process = nil
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs dnsmasq on `port`: nil once it has read its hosts file, else its output.
    private func launch(_ executable: String, port: Int, srv: [String]) throws -> String? {
        let arguments = ["-k", "2", "60"] + launcher + [executable] + [
            "--no-daemon", "--port=\(port)", "--listen-address=\(address)", "--bind-interfaces", "--no-resolv",
            "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--log-facility=-", "--cache-size=0",
            "--local=/trellis.test/", "--addn-hosts=\(hostsFile.path)",
        ] + srv.map { "--srv-host=\($0)" }
        let process = try ChildProcess(try ChildProcess.locate("timeout", in: ["/usr/bin", "/bin"]), arguments)
        try waitFor("dnsmasq to start", process) { self.readsOfHosts(process) > 0 || !process.isRunning }
        guard process.isRunning else { return process.outputText }
        self.process = process
        return nil
    }

    private func readsOfHosts(_ process: ChildProcess) -> Int {
        process.outputText.components(separatedBy: "read \(hostsFile.path)").count - 1
    }

    private func waitFor(_ what: String, _ process: ChildProcess, _ condition: () -> Bool) throws {
        for _ in 0..<150 {
            if condition() { return }
            usleep(20_000)
        }
        process.stop()
        throw DNSMasqError("timed out after 3 s waiting for \(what); its output:\n\(process.outputText)")
    }

    private static func executable() throws -> String {
        do {
            return try ChildProcess.locate("dnsmasq", in: ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"])
        } catch {
            let message = "dnsmasq is not installed: run scripts/setup (it installs the Debian package dnsmasq-base)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw DNSMasqError(message) }
            throw XCTSkip(message)
        }
    }
}

/// dnsmasq did not start or did not do what was asked; the description says why.
public struct DNSMasqError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
