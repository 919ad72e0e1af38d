import Crypto
import NIOCore
import TrellisWire

/// The mutual-authentication handshake that opens every connection.
///
/// 1. The acceptor sends a challenge: `{v, nonce}`.
/// 2. The connector answers with a hello: `{v, cluster, id, meta, channel, nonce, mac}` where
///    `mac = HMAC-SHA256(cookie, hello transcript)`.
/// 3. The acceptor checks version, cluster and MAC, then sends a welcome: `{id, meta, mac}`
///    with its own MAC over the welcome transcript, or a reject `{reason}` and closes.
/// 4. The connector checks the welcome MAC and the acceptor's id.
///
/// Both transcripts cover both nonces, so neither message can be replayed; the cookie itself
/// never crosses the wire. Each transcript starts with its own domain-separation label.
enum Handshake {
    static let protocolVersion: Int64 = 1
    static let nonceSize = 32

    /// Why a handshake failed; the description is what the log and events say.
    enum Failure: Error, CustomStringConvertible {
        case versionMismatch(Int64?)
        case wrongCluster(String)
        case wrongCookie
        case wrongPeer(expected: PeerID, actual: String)
        case malformed(String)
        /// The connector is a peer the acceptor is partitioned from (`setUnreachable`).
        case partitioned(PeerID)
        /// The connector named a channel the acceptor does not accept (`acceptedChannels`).
        case channelNotAccepted(ChannelName)

        var description: String {
            switch self {
            case .versionMismatch(let v):
                return "protocol version mismatch: peer speaks \(v.map(String.init) ?? "unknown"), this node speaks \(Handshake.protocolVersion); run the same Trellis version on every node"
            case .wrongCluster(let name):
                return "wrong cluster name '\(name)'; both nodes must use the same clusterName"
            case .wrongCookie:
                return "wrong cookie: authentication code did not verify; both nodes must use the same cookie"
            case .wrongPeer(let expected, let actual):
                return "peer identifies as \(actual) but \(expected) was dialed; check the peer's configured name and address"
            case .malformed(let what):
                return "malformed handshake: \(what)"
            case .partitioned(let peer):
                return "unreachable (partitioned): the accepting node is cut off from \(peer) and refuses its connections until the partition heals"
            case .channelNotAccepted(let channel):
                return "channel '\(channel)' is not accepted by this node; add it to acceptedChannels on the accepting node, or send on an accepted channel"
            }
        }
    }

    /// Everything both MACs cover.
    struct Transcript {
        var cluster: String
        var channel: String
        var connectorID: String
        var connectorMetadata: Value
        var acceptorNonce: [UInt8]
        var connectorNonce: [UInt8]

        /// The bytes the connector's MAC covers.
        var helloInput: [UInt8] { bytes(label: "trellis-handshake-v1/hello") }

        /// The bytes the acceptor's MAC covers.
        func welcomeInput(acceptorID: String, acceptorMetadata: Value) -> [UInt8] {
            var data = bytes(label: "trellis-handshake-v1/welcome")
            append(Array(acceptorID.utf8), to: &data)
            append(MessagePack.encode(acceptorMetadata), to: &data)
            return data
        }

        private func bytes(label: String) -> [UInt8] {
            var data: [UInt8] = []
            for field in [Array(label.utf8), Array(cluster.utf8), Array(channel.utf8), Array(connectorID.utf8),
                          MessagePack.encode(connectorMetadata), acceptorNonce, connectorNonce] {
                append(field, to: &data)
            }
            return data
        }

        private func append(_ field: [UInt8], to data: inout [UInt8]) {
            let count = UInt32(field.count)
            data.append(contentsOf: [UInt8(count >> 24), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)])
            data.append(contentsOf: field)
        }
    }

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func challenge(nonce: [UInt8]) -> Value {
        .map(["v": .int(protocolVersion), "nonce": .bytes(nonce)])
    }

    /// The acceptor's nonce from a challenge, after checking the version.
    static func readChallenge(_ value: Value) throws(Failure) -> [UInt8] {
        guard let version = value["v"]?.intValue else { throw .malformed("challenge without version") }
        guard version == protocolVersion else { throw .versionMismatch(version) }
        return try nonceField(value, "challenge")
    }

    static func hello(_ transcript: Transcript, key: SymmetricKey) -> Value {
        .map([
            "v": .int(protocolVersion), "cluster": .string(transcript.cluster), "id": .string(transcript.connectorID),
            "meta": transcript.connectorMetadata, "channel": .string(transcript.channel),
            "nonce": .bytes(transcript.connectorNonce), "mac": .bytes(Array(HMAC<SHA256>.authenticationCode(for: transcript.helloInput, using: key))),
        ])
    }

    /// Checks a hello against the acceptor's expectations; returns the transcript and the
    /// connector's id and metadata.
    static func verifyHello(
        _ value: Value, acceptorNonce: [UInt8], cluster: String, key: SymmetricKey
    ) throws(Failure) -> (Transcript, PeerID, PeerMetadata) {
        guard let version = value["v"]?.intValue else { throw .malformed("hello without version") }
        guard version == protocolVersion else { throw .versionMismatch(version) }
        guard let theirCluster = value["cluster"]?.stringValue else { throw .malformed("hello without cluster name") }
        guard theirCluster == cluster else { throw .wrongCluster(theirCluster) }
        guard let idText = value["id"]?.stringValue, let id = try? PeerID(parsing: idText) else {
            throw .malformed("hello without a valid peer id")
        }
        guard let channel = value["channel"]?.stringValue, !channel.isEmpty else { throw .malformed("hello without channel") }
        let metaValue = value["meta"] ?? .nil
        let metadata = try metadata(from: metaValue)
        guard case .bytes(let mac)? = value["mac"] else { throw .malformed("hello without MAC") }
        let transcript = Transcript(
            cluster: cluster, channel: channel, connectorID: idText, connectorMetadata: metaValue,
            acceptorNonce: acceptorNonce, connectorNonce: try nonceField(value, "hello"))
        // isValidAuthenticationCode compares in constant time.
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: transcript.helloInput, using: key) else {
            throw .wrongCookie
        }
        return (transcript, id, metadata)
    }

    static func welcome(_ transcript: Transcript, acceptorID: PeerID, metadata: Value, key: SymmetricKey) -> Value {
        let input = transcript.welcomeInput(acceptorID: acceptorID.description, acceptorMetadata: metadata)
        let mac = HMAC<SHA256>.authenticationCode(for: input, using: key)
        return .map(["id": .string(acceptorID.description), "meta": metadata, "mac": .bytes(Array(mac))])
    }

    /// Checks a welcome on the connector side; returns the acceptor's metadata.
    static func verifyWelcome(
        _ value: Value, transcript: Transcript, expected: PeerID, key: SymmetricKey
    ) throws(Failure) -> PeerMetadata {
        guard let id = value["id"]?.stringValue else { throw .malformed("welcome without peer id") }
        let metaValue = value["meta"] ?? .nil
        guard case .bytes(let mac)? = value["mac"] else { throw .malformed("welcome without MAC") }
        let input = transcript.welcomeInput(acceptorID: id, acceptorMetadata: metaValue)
        // isValidAuthenticationCode compares in constant time.
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: input, using: key) else { throw .wrongCookie }
        guard id == expected.description else { throw .wrongPeer(expected: expected, actual: id) }
        return try metadata(from: metaValue)
    }

    /// Why the acceptor closes the connection, for the connector's log.
    static func reject(_ reason: some CustomStringConvertible) -> Value { .map(["reason": .string(reason.description)]) }

    static func metadataValue(_ metadata: PeerMetadata) -> Value {
        .map([
            "tags": .map(metadata.tags.mapValues { Value.string($0) }),
            "caps": .array(metadata.capabilities.map { .string($0) }),
        ])
    }

    static func metadata(from value: Value) throws(Failure) -> PeerMetadata {
        guard case .map(let tagEntries)? = value["tags"], let caps = value["caps"]?.arrayValue else {
            throw .malformed("metadata without tags or capabilities")
        }
        var tags: [String: String] = [:]
        for entry in tagEntries {
            guard let key = entry.key.stringValue, let tag = entry.value.stringValue else { throw .malformed("non-string tag") }
            tags[key] = tag
        }
        var capabilities: [String] = []
        for cap in caps {
            guard let name = cap.stringValue else { throw .malformed("non-string capability") }
            capabilities.append(name)
        }
        return PeerMetadata(tags: tags, capabilities: capabilities)
    }

    private static func nonceField(_ value: Value, _ message: String) throws(Failure) -> [UInt8] {
        guard case .bytes(let nonce)? = value["nonce"], nonce.count == nonceSize else {
            throw .malformed("\(message) without a \(nonceSize)-byte nonce")
        }
        return nonce
    }
}
