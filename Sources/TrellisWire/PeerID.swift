/// A peer's identity: `name@host:port`, the node's name and the address it listens on.
///
/// Ids compare as strings (byte-wise), as the script contract requires.
public struct PeerID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The fields behind one reference: copying an id (every message received carries one)
    /// costs one retain, and hashing it (every send looks its connection up) hashes one integer.
    private final class Storage: Sendable {
        let name: String
        let host: String
        let port: Int
        let description: String
        /// `description`'s hash in this process, computed once.
        let descriptionHash: Int

        init(name: String, host: String, port: Int) {
            self.name = name
            self.host = host
            self.port = port
            self.description = "\(name)@\(host):\(port)"
            self.descriptionHash = description.hashValue
        }
    }

    private let storage: Storage

    /// The node's name, e.g. `n1`.
    public var name: String { storage.name }
    /// The host the node listens on, e.g. `127.0.0.1`.
    public var host: String { storage.host }
    /// The TCP port the node listens on.
    public var port: Int { storage.port }
    /// The canonical text form, `name@host:port`.
    public var description: String { storage.description }

    public init(name: String, host: String, port: Int) {
        storage = Storage(name: name, host: host, port: port)
    }

    /// Parses `name@host:port`; the host may be a bracketed IPv6 address.
    public init(parsing text: String) throws(PeerIDError) {
        guard let at = text.firstIndex(of: "@") else { throw .malformed(text, "missing '@' between name and address") }
        let name = String(text[..<at])
        let address = text[text.index(after: at)...]
        guard !name.isEmpty else { throw .malformed(text, "empty node name") }
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }) else {
            throw .malformed(text, "node names use letters, digits, '_', '-' and '.'")
        }
        guard let colon = address.lastIndex(of: ":") else { throw .malformed(text, "missing ':port'") }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw .malformed(text, "empty host") }
        guard let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
            throw .malformed(text, "port must be a number from 0 to 65535")
        }
        self.init(name: name, host: host, port: port)
    }

    public static func < (lhs: PeerID, rhs: PeerID) -> Bool {
        lhs.description.utf8.lexicographicallyPrecedes(rhs.description.utf8)
    }

    public static func == (lhs: PeerID, rhs: PeerID) -> Bool {
        lhs.storage === rhs.storage || lhs.description.utf8.elementsEqual(rhs.description.utf8)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(storage.descriptionHash) }
}

/// Why a peer id could not be parsed.
public enum PeerIDError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String, String)

    public var description: String {
        switch self {
        case .malformed(let text, let reason):
            return "invalid peer id '\(text)': \(reason); expected name@host:port, e.g. n1@127.0.0.1:7101"
        }
    }
}
