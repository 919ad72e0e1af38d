import Synchronization

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
        /// `description`'s UTF-8 bytes: comparing two ids reads them in place, without
        /// retaining any string. Safe to share between threads: written once in `init`, only
        /// read afterwards, and freed in `deinit`, when no id refers to them any more.
        nonisolated(unsafe) let bytes: UnsafeRawBufferPointer
        /// Whether parsing `description` gives back exactly this id (ids made from parts are
        /// not checked): only such ids may answer a parse from the interned table.
        let isCanonical: Bool

        init(name: String, host: String, port: Int, description: String) {
            self.name = name
            self.host = host
            self.port = port
            self.description = description
            self.descriptionHash = description.hashValue
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: description.utf8.count, alignment: 1)
            _ = bytes.initializeMemory(as: UInt8.self, from: description.utf8)
            self.bytes = UnsafeRawBufferPointer(bytes)
            isCanonical = PeerID.isValidName(name) && !host.isEmpty && !(host.hasPrefix("[") && host.hasSuffix("]"))
                && (0...65535).contains(port)
        }

        deinit { bytes.deallocate() }

        /// Negative, zero or positive as this id's bytes sort before, with or after `other`'s.
        func compare(with other: Storage) -> Int { ByteOrder.compare(bytes, other.bytes) }
    }

    private let storage: Storage

    /// The ids made so far, by their text. Equal ids share one storage, so that comparing
    /// them compares two references and never reads their bytes. Past `internedLimit` ids
    /// (only a flood of made-up ones gets there) a new id gets a storage of its own, and
    /// equality falls back to the bytes.
    private static let interned = Mutex<[ExactString: Storage]>([:])
    private static let internedLimit = 1 << 17

    /// The interned storage for `description`, if any.
    private static func internedStorage(_ description: String) -> Storage? {
        interned.withLock { $0[ExactString(description)] }
    }

    /// The interned storage for `description`, made by `make` and interned when new.
    private static func intern(_ description: String, _ make: () -> Storage) -> Storage {
        interned.withLock { table in
            let key = ExactString(description)
            if let existing = table[key] { return existing }
            let storage = make()
            if table.count < internedLimit { table[key] = storage }
            return storage
        }
    }

    /// The node's name, e.g. `n1`.
    public var name: String { storage.name }
    /// The host the node listens on, e.g. `127.0.0.1`.
    public var host: String { storage.host }
    /// The TCP port the node listens on.
    public var port: Int { storage.port }
    /// The canonical text form, `name@host:port`.
    public var description: String { storage.description }

    public init(name: String, host: String, port: Int) {
        let description = "\(name)@\(host):\(port)"
        self.init(storage: Self.intern(description) { Storage(name: name, host: host, port: port, description: description) })
    }

    private init(storage: Storage) {
        self.storage = storage
    }

    /// Parses `name@host:port`; the host may be a bracketed IPv6 address.
    public init(parsing text: String) throws(PeerIDError) {
        if let known = Self.internedStorage(text), known.isCanonical {
            self.init(storage: known)
            return
        }
        guard let at = text.firstIndex(of: "@") else { throw .malformed(text, "missing '@' between name and address") }
        let name = String(text[..<at])
        let address = text[text.index(after: at)...]
        guard !name.isEmpty else { throw .malformed(text, "empty node name") }
        guard Self.isValidName(name) else {
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

    private static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." }
    }

    public static func < (lhs: PeerID, rhs: PeerID) -> Bool {
        lhs.storage !== rhs.storage && lhs.storage.compare(with: rhs.storage) < 0
    }

    public static func == (lhs: PeerID, rhs: PeerID) -> Bool {
        lhs.storage === rhs.storage
            || (lhs.storage.descriptionHash == rhs.storage.descriptionHash && lhs.storage.compare(with: rhs.storage) == 0)
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
