import Foundation
import TrellisTestSupport
import XCTest

/// A small network of Linux network namespaces standing in for separate machines.
///
/// Namespace `trellis-<pid>-sw` holds a bridge, `br0`, with address 10.77.S.1/24 (S is
/// chosen per run, see `init`). Each host `i` (1-based) is namespace `trellis-<pid>-h<i>`
/// whose `eth0`, address 10.77.S.(10+i)/24, is one end of a veth pair; the other end is a
/// port of the bridge. One more veth pair joins the bridge to the root namespace, whose end,
/// `trellis<pid>`, gets 10.77.S.254/24: that is all this adds to the root namespace (one
/// link-local route), and it lets the test reach every host. Traffic between hosts never
/// leaves the switch namespace, so the root namespace's firewall does not see it.
///
/// `remove()` (call it from `tearDown`) kills whatever still runs in the namespaces and
/// deletes them, which deletes the veth pairs and the bridge. A run that crashed before that
/// leaves its namespaces behind; the next run deletes those whose process is gone.
/// Make one network at a time per process.
final class NetworkNamespaces {
    /// The prefix of every namespace this type makes; the process id follows.
    static let prefix = "trellis-"

    let hostCount: Int
    /// The third octet of every address: 10.77.`subnet`.0/24.
    let subnet: Int
    private let name = "\(NetworkNamespaces.prefix)\(getpid())"
    private let ip: String
    private var rootLink: String { "trellis\(getpid())" }

    var switchNamespace: String { "\(name)-sw" }
    /// The bridge's address, in the switch namespace.
    var switchAddress: String { "10.77.\(subnet).1" }

    func namespace(ofHost index: Int) -> String { "\(name)-h\(index)" }
    func address(ofHost index: Int) -> String { "10.77.\(subnet).\(10 + index)" }

    /// The command prefix that runs a program inside `namespace`.
    func launcher(in namespace: String) -> [String] { [ip, "netns", "exec", namespace] }

    /// Builds the switch and `hosts` hosts.
    ///
    /// - Throws: `XCTSkip` when namespaces cannot be made here (no `ip` command, not root, no
    ///   CAP_SYS_ADMIN and CAP_NET_ADMIN); `NetworkSetupError` when a later step fails.
    init(hosts: Int) throws {
        do {
            ip = try ChildProcess.locate("ip", in: ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        } catch {
            throw XCTSkip("the multi-host tests need Linux network namespaces, but `ip` (iproute2) is not installed")
        }
        hostCount = hosts
        Self.removeLeftovers(ip: ip)
        subnet = try Self.freeSubnet(ip: ip)
        do {
            try Self.run(ip, ["netns", "add", "\(name)-sw"])
        } catch {
            throw XCTSkip("""
                cannot create a network namespace, so the multi-host tests cannot run here: \(error) \
                (they need root, or CAP_SYS_ADMIN and CAP_NET_ADMIN)
                """)
        }
        do {
            try build()
        } catch {
            remove()
            throw error
        }
    }

    /// Takes host `index` off the network, as if its cable were pulled: its `eth0` goes down.
    func cutLink(ofHost index: Int) throws {
        try run(["-n", namespace(ofHost: index), "link", "set", "eth0", "down"])
    }

    /// Puts host `index` back on the network (its address and route come back with the link).
    func restoreLink(ofHost index: Int) throws {
        try run(["-n", namespace(ofHost: index), "link", "set", "eth0", "up"])
    }

    /// Delays every packet host `index` sends by `milliseconds` with `tc netem`; call
    /// `requireNetem()` first.
    func addLatency(milliseconds: Int, toHost index: Int) throws {
        try tc(in: namespace(ofHost: index), ["qdisc", "add", "dev", "eth0", "root", "netem", "delay", "\(milliseconds)ms"])
    }

    /// Returns if `tc netem` works here (tried on the switch namespace's loopback).
    ///
    /// - Throws: `XCTSkip` when `tc` is not installed or the kernel has no netem.
    func requireNetem() throws {
        do {
            try tc(in: switchNamespace, ["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            try tc(in: switchNamespace, ["qdisc", "delete", "dev", "lo", "root"])
        } catch let error as NetworkSetupError where error.output.contains("qdisc kind is unknown") {
            throw XCTSkip("this kernel has no tc netem (CONFIG_NET_SCH_NETEM, module sch_netem), so no latency can be added")
        }
    }

    private func tc(in namespace: String, _ arguments: [String]) throws {
        let tc: String
        do {
            tc = try ChildProcess.locate("tc", in: ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        } catch {
            throw XCTSkip("`tc` (iproute2) is not installed, so no latency can be added")
        }
        try Self.run(ip, ["netns", "exec", namespace, tc] + arguments)
    }

    /// Kills every process left in the namespaces and deletes them. Safe to call twice.
    func remove() {
        Self.remove(namespaces: (1...hostCount).map(namespace(ofHost:)) + [switchNamespace], ip: ip)
        _ = try? run(["link", "delete", rootLink])  // gone with the switch already, unless a process held it
    }

    private func build() throws {
        let sw = switchNamespace
        try run(["-n", sw, "link", "set", "lo", "up"])
        try run(["-n", sw, "link", "add", "br0", "type", "bridge"])
        try run(["-n", sw, "address", "add", "\(switchAddress)/24", "dev", "br0"])
        try run(["-n", sw, "link", "set", "br0", "up"])
        for index in 1...hostCount {
            let host = namespace(ofHost: index)
            try run(["netns", "add", host])
            try run(["-n", host, "link", "set", "lo", "up"])
            try run(["link", "add", "eth0", "netns", host, "type", "veth", "peer", "name", "h\(index)", "netns", sw])
            try run(["-n", sw, "link", "set", "h\(index)", "master", "br0", "up"])
            try run(["-n", host, "address", "add", "\(address(ofHost: index))/24", "dev", "eth0"])
            try run(["-n", host, "link", "set", "eth0", "up"])
        }
        try run(["link", "add", rootLink, "type", "veth", "peer", "name", "root", "netns", sw])
        try run(["-n", sw, "link", "set", "root", "master", "br0", "up"])
        try run(["address", "add", "10.77.\(subnet).254/24", "dev", rootLink])
        try run(["link", "set", rootLink, "up"])
    }

    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        try Self.run(ip, arguments)
    }

    /// A 10.77.S.0/24 that no address of the root namespace is in; S starts from the process
    /// id, so concurrent runs (several worktrees) start apart.
    private static func freeSubnet(ip: String) throws -> Int {
        let addresses = try run(ip, ["-4", "-o", "address", "show"])
        let start = Int(getpid()) % 250
        for offset in 0..<250 {
            let candidate = 2 + (start + offset) % 250
            if !addresses.contains(" 10.77.\(candidate).") { return candidate }
        }
        throw NetworkSetupError(command: "ip -4 address show", output: "every 10.77.S.0/24 (S from 2 to 251) is in use")
    }

    /// Deletes the namespaces of earlier runs whose process is gone (a crash, a kill -9), and
    /// any of this process (tests run one at a time, so they are an earlier test's).
    private static func removeLeftovers(ip: String) {
        guard let list = try? run(ip, ["netns", "list"]) else { return }
        let stale = list.split(separator: "\n").compactMap { line -> String? in
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count == 3, name.hasPrefix(prefix), let pid = Int32(parts[1]) else { return nil }
            let alive = pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)
            return alive ? nil : name
        }
        remove(namespaces: stale, ip: ip)
    }

    private static func remove(namespaces: [String], ip: String) {
        for namespace in namespaces {
            let pids = (try? run(ip, ["netns", "pids", namespace])) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
            _ = try? run(ip, ["netns", "delete", namespace])
        }
    }

    private static let timeout = (try? ChildProcess.locate("timeout", in: ["/usr/bin", "/bin"])) ?? "/usr/bin/timeout"

    /// Runs `path` with `arguments` under `timeout 10`; its output (stdout and stderr).
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let command = ([path] + arguments).joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: timeout)
        process.arguments = ["-k", "1", "10", path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw NetworkSetupError(command: command, output: "\(error)")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NetworkSetupError(command: command, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }
}

/// A command that builds or changes the test network failed.
struct NetworkSetupError: Error, CustomStringConvertible {
    let command: String
    let output: String
    var description: String { "`\(command)` failed: \(output)" }
}
