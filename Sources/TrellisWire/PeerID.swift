import Synchronization

/// A peer's identity: `name@host:port`, the node's name and the address it listens on.
///
/// Ids compare as strings (byte-wise), as the script contract requires.
public struct PeerID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The fields behind one reference: copying an id (every message received carries one)
    /// costs at most one retain (none when interned, see `Reference`), and hashing it (every
    /// send looks its connection up) hashes one integer.
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
        /// The id's place in the interned table, or -1 when it has a storage of its own.
        let serial: Int

        init(name: String, host: String, port: Int, description: String, serial: Int) {
            self.name = name
            self.host = host
            self.port = port
            self.description = description
            self.serial = serial
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

    /// How an id holds its storage.
    ///
    /// An interned storage lives as long as the process (the table below never lets go of
    /// it), so ids hold it without counting references: copying such an id, which every
    /// message received does on one thread while the consuming thread drops another, touches
    /// no shared counter. Only storages past the table's limit are counted.
    private enum Reference {
        case interned(Unmanaged<Storage>)
        case counted(Storage)
    }

    private let reference: Reference
    /// The storage's `descriptionHash` and `serial`, copied into the id: hashing an id, telling
    /// two ids apart and finding an id's slot by serial (every message and heartbeat does all
    /// three) then read no storage, which with thousands of peers is rarely in the cache.
    private let descriptionHash: Int
    private let serialOrNone: Int32

    /// Reads the storage, without counting a reference to an interned one.
    private func read<Field>(_ field: (Storage) -> Field) -> Field {
        switch reference {
        case .interned(let storage): return storage._withUnsafeGuaranteedRef(field)
        case .counted(let storage): return field(storage)
        }
    }

    /// The storage's address: equal for two ids exactly when they share one storage.
    private var address: UnsafeMutableRawPointer {
        switch reference {
        case .interned(let storage): return storage.toOpaque()
        case .counted(let storage): return Unmanaged.passUnretained(storage).toOpaque()
        }
    }

    /// The ids made so far, by their text. Equal ids share one storage, so that comparing
    /// them compares two references and never reads their bytes. Past `internedLimit` ids
    /// (only a flood of made-up ones gets there) a new id gets a storage of its own, and
    /// equality falls back to the bytes. Entries are never removed: `Reference.interned`
    /// relies on it.
    private static let interned = Mutex<[ExactString: Storage]>([:])
    private static let internedLimit = 1 << 17

    /// The interned storage for `description`, if any.
    private static func internedStorage(_ description: String) -> Storage? {
        interned.withLock { $0[ExactString(description)] }
    }

    /// The reference to the interned storage for `description`, made by `make` (given its
    /// serial) and interned when new; a counted reference to a storage of its own once the
    /// table is full.
    private static func intern(_ description: String, _ make: (_ serial: Int) -> Storage) -> Reference {
        interned.withLock { table in
            let key = ExactString(description)
            if let existing = table[key] { return .interned(Unmanaged.passUnretained(existing)) }
            guard table.count < internedLimit else { return .counted(make(-1)) }
            let storage = make(table.count)
            table[key] = storage
            return .interned(Unmanaged.passUnretained(storage))
        }
    }

    /// The node's name, e.g. `n1`.
    public var name: String { read(\.name) }
    /// The host the node listens on, e.g. `127.0.0.1`.
    public var host: String { read(\.host) }
    /// The TCP port the node listens on.
    public var port: Int { read(\.port) }
    /// The canonical text form, `name@host:port`.
    public var description: String { read(\.description) }
    /// A number this process gave the id when it first met it, counting from 0: tables indexed
    /// by id (the simulator's) read an array with it instead of hashing. `nil` for the ids past
    /// the first 131,072, which only a flood of made-up ids reaches.
    public var serial: Int? { serialOrNone >= 0 ? Int(serialOrNone) : nil }

    public init(name: String, host: String, port: Int) {
        let description = "\(name)@\(host):\(port)"
        self.init(reference: Self.intern(description) { Storage(name: name, host: host, port: port, description: description, serial: $0) })
    }

    private init(reference: Reference) {
        self.reference = reference
        switch reference {
        case .interned(let storage):
            (descriptionHash, serialOrNone) = storage._withUnsafeGuaranteedRef { ($0.descriptionHash, Int32($0.serial)) }
        case .counted(let storage):
            (descriptionHash, serialOrNone) = (storage.descriptionHash, Int32(storage.serial))
        }
    }

    /// An id with a storage of its own, as ids get once the table is full (for tests).
    static func uninterned(name: String, host: String, port: Int) -> PeerID {
        PeerID(reference: .counted(Storage(name: name, host: host, port: port, description: "\(name)@\(host):\(port)", serial: -1)))
    }

    /// Parses `name@host:port`; the host may be a bracketed IPv6 address.
    public init(parsing text: String) throws(PeerIDError) {
        if let known = Self.internedStorage(text), known.isCanonical {
            self.init(reference: .interned(Unmanaged.passUnretained(known)))
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
        lhs.address != rhs.address && lhs.read { mine in rhs.read { mine.compare(with: $0) } } < 0
    }

    public static func == (lhs: PeerID, rhs: PeerID) -> Bool {
        lhs.address == rhs.address
            || lhs.descriptionHash == rhs.descriptionHash && lhs.read { mine in rhs.read { mine.compare(with: $0) == 0 } }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(descriptionHash) }
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
