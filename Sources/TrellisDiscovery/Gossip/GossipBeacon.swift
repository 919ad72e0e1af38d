import Crypto
import Foundation
import TrellisWire

/// The heartbeat of gossip discovery, and how it is written and checked.
///
/// Layout: `TRG1` · timestamp (milliseconds since 1970, 8 bytes, big-endian) · cluster name
/// (1-byte length, UTF-8) · peer id (1-byte length, UTF-8) · HMAC-SHA256 of everything before
/// it (32 bytes). The key is derived from the cookie and the cluster name with HKDF-SHA256, so
/// the cookie never crosses the wire and two clusters sharing a cookie still have other keys.
struct GossipBeacon: Sendable, Equatable {
    var clusterName: String
    var peer: PeerID
    var timestamp: UInt64

    static let magic = Array("TRG1".utf8)
    static let macSize = 32
    /// Larger datagrams are never beacons.
    static let maxSize = 4 + 8 + 1 + 255 + 1 + 255 + macSize

    /// The key of `clusterName`'s beacons, as bytes: `SymmetricKey` is not `Sendable`, so it
    /// is made from them where used.
    static func key(cookie: String, clusterName: String) -> [UInt8] {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(cookie.utf8)), salt: Data("trellis-gossip-v1".utf8),
            info: Data(clusterName.utf8), outputByteCount: 32
        ).withUnsafeBytes { Array($0) }
    }

    /// The signed datagram. The cluster name and peer id must each fit in 255 bytes.
    func encoded(key: [UInt8]) -> [UInt8] {
        var bytes = Self.magic
        withUnsafeBytes(of: timestamp.bigEndian) { bytes += $0 }
        for text in [clusterName, peer.description] {
            let utf8 = Array(text.utf8)
            bytes.append(UInt8(utf8.count))
            bytes += utf8
        }
        bytes += HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key))
        return bytes
    }
}

/// What became of a received datagram.
enum GossipVerdict: Sendable, Equatable {
    /// A fresh beacon of this peer.
    case accepted(PeerID)
    /// This node's own beacon, looped back.
    case own
    /// Not a beacon: wrong magic, bad lengths, or an invalid peer id.
    case malformed
    /// A beacon of another cluster.
    case otherCluster
    /// A beacon of this cluster's name whose signature does not check: a stranger, or a node
    /// with another cookie.
    case badSignature
    /// A signed beacon whose timestamp is outside the window around this node's clock.
    case stale
    /// A signed beacon no newer than one already accepted from that peer: a replay.
    case replayed
}

/// How many datagrams got each verdict.
public struct GossipStats: Sendable, Equatable {
    public var accepted = 0
    public var malformed = 0
    public var otherCluster = 0
    public var badSignature = 0
    public var stale = 0
    public var replayed = 0

    public init() {}
}

/// The peers heard from, and the checks on each datagram: pure state, times passed in (wall
/// clock milliseconds, as beacons carry).
struct GossipTable: Sendable {
    let selfID: PeerID
    let clusterName: String
    let key: [UInt8]
    /// A beacon's timestamp may be this far (ms) from the receiver's clock, either way.
    let window: UInt64
    /// A peer counts as alive this long (ms) after its latest beacon.
    let expiry: UInt64
    private(set) var stats = GossipStats()
    private var peers: [PeerID: (timestamp: UInt64, heardAt: UInt64)] = [:]

    init(selfID: PeerID, clusterName: String, key: [UInt8], window: UInt64, expiry: UInt64) {
        self.selfID = selfID
        self.clusterName = clusterName
        self.key = key
        self.window = window
        self.expiry = expiry
    }

    /// Checks a datagram received at `now` and records its peer if it passes: a well-formed
    /// beacon of this cluster, signed with its key, within the window, and newer than that
    /// peer's previous one.
    mutating func receive(_ bytes: [UInt8], now: UInt64) -> GossipVerdict {
        let verdict = check(bytes, now: now)
        switch verdict {
        case .accepted: stats.accepted += 1
        case .own: break
        case .malformed: stats.malformed += 1
        case .otherCluster: stats.otherCluster += 1
        case .badSignature: stats.badSignature += 1
        case .stale: stats.stale += 1
        case .replayed: stats.replayed += 1
        }
        return verdict
    }

    /// The peers heard from within `expiry` of `now`; forgets those that can no longer be
    /// replayed either.
    mutating func alive(now: UInt64) -> Set<PeerID> {
        let forget = max(expiry, 2 * window)
        peers = peers.filter { now <= $0.value.heardAt + forget }
        return Set(peers.filter { now <= $0.value.heardAt + expiry }.keys)
    }

    private mutating func check(_ bytes: [UInt8], now: UInt64) -> GossipVerdict {
        let macStart = bytes.count - GossipBeacon.macSize
        guard bytes.count <= GossipBeacon.maxSize, macStart > 14, bytes.starts(with: GossipBeacon.magic) else { return .malformed }
        let timestamp = bytes[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var offset = 12
        var texts: [String] = []
        for _ in 0..<2 {
            guard offset < macStart else { return .malformed }
            let end = offset + 1 + Int(bytes[offset])
            guard end <= macStart else { return .malformed }
            texts.append(String(decoding: bytes[(offset + 1)..<end], as: UTF8.self))
            offset = end
        }
        guard offset == macStart else { return .malformed }
        guard texts[0] == clusterName else { return .otherCluster }
        guard HMAC<SHA256>.isValidAuthenticationCode(bytes[macStart...], authenticating: bytes[..<macStart], using: SymmetricKey(data: key))
        else { return .badSignature }
        guard let peer = try? PeerID(parsing: texts[1]) else { return .malformed }
        if peer == selfID { return .own }
        guard (timestamp > now ? timestamp - now : now - timestamp) <= window else { return .stale }
        if let last = peers[peer], timestamp <= last.timestamp { return .replayed }
        peers[peer] = (timestamp, now)
        return .accepted(peer)
    }
}
