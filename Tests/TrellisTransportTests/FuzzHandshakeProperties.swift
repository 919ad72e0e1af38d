import Crypto
import NIOCore
import TrellisWire

@testable import TrellisTransport

// The handshake's fuzz properties (see FuzzProperties.swift); symlinked into Fuzz/ as well.

/// Properties of the handshake parsers, between a fixed acceptor and connector sharing a
/// cookie. Each input is tried as it is and again signed with the cookie (its MAC replaced
/// by the right one), so the fuzzer gets past the MAC check to everything behind it.
enum HandshakeProperties {
    static let cluster = "fuzz"
    static let cookie = Array("fuzz-cookie".utf8)
    static let acceptorNonce = [UInt8](repeating: 0xa5, count: Handshake.nonceSize)
    static let acceptor = PeerID(name: "acceptor", host: "127.0.0.1", port: 7000)
    static let acceptorMetadata = PeerMetadata(tags: ["zone": "a"], capabilities: ["lua"])

    static var key: SymmetricKey { SymmetricKey(data: cookie) }

    /// The connector's side of a handshake with the acceptor, against which welcomes are checked.
    static var connectorTranscript: Handshake.Transcript {
        Handshake.Transcript(
            cluster: cluster, channel: "default", connectorID: "connector@127.0.0.1:7001",
            connectorMetadata: Handshake.metadataValue(PeerMetadata(tags: ["zone": "b"])),
            acceptorNonce: acceptorNonce, connectorNonce: [UInt8](repeating: 0x5a, count: Handshake.nonceSize))
    }

    static func check(_ input: [UInt8]) throws(FuzzViolation) {
        guard case .success(let message) = decode(input) else { return }
        try checkChallenge(message)
        try checkMetadata(message)
        try checkHello(message, signed: false)
        if let signed = signedHello(message) { try checkHello(signed, signed: true) }
        try checkWelcome(message, signed: false)
        if let signed = signedWelcome(message) { try checkWelcome(signed, signed: true) }
    }

    /// `message` with the MAC an honest connector would send for its fields.
    static func signedHello(_ message: Value) -> Value? {
        guard case .map = message else { return nil }
        var connectorNonce: [UInt8] = []
        if case .bytes(let nonce)? = message["nonce"] { connectorNonce = nonce }
        let transcript = Handshake.Transcript(
            cluster: message["cluster"]?.stringValue ?? "", channel: message["channel"]?.stringValue ?? "",
            connectorID: message["id"]?.stringValue ?? "", connectorMetadata: message["meta"] ?? .nil,
            acceptorNonce: acceptorNonce, connectorNonce: connectorNonce)
        return replacingMAC(of: message, with: Array(HMAC<SHA256>.authenticationCode(for: transcript.helloInput, using: key)))
    }

    /// `message` with the MAC the acceptor would send for its fields to the connector.
    static func signedWelcome(_ message: Value) -> Value? {
        guard case .map = message, let id = message["id"]?.stringValue else { return nil }
        let input = connectorTranscript.welcomeInput(acceptorID: id, acceptorMetadata: message["meta"] ?? .nil)
        return replacingMAC(of: message, with: Array(HMAC<SHA256>.authenticationCode(for: input, using: key)))
    }

    private static func checkChallenge(_ message: Value) throws(FuzzViolation) {
        switch Result(catching: { () throws(Handshake.Failure) in try Handshake.readChallenge(message) }) {
        case .success(let nonce):
            try require(
                message["nonce"] == .bytes(nonce) && nonce.count == Handshake.nonceSize
                    && message["v"]?.intValue == Handshake.protocolVersion,
                "readChallenge accepted \(message)")
        case .failure(.versionMismatch(let version)):
            try require(version != nil && version != Handshake.protocolVersion, "versionMismatch(\(version.map(String.init) ?? "nil"))")
        case .failure(.malformed):
            break
        case .failure(let failure):
            throw FuzzViolation("readChallenge threw \(failure)")
        }
    }

    /// Metadata read from a message survives the trip through its wire form.
    private static func checkMetadata(_ message: Value) throws(FuzzViolation) {
        guard let metadata = try? Handshake.metadata(from: message) else { return }
        try require(metadata.capabilities.count == message["caps"]?.arrayValue?.count, "capabilities lost")
        let wire = MessagePack.encode(Handshake.metadataValue(metadata))
        try require((try? Handshake.metadata(from: MessagePack.decode(wire))) == metadata, "\(metadata) changed on the wire")
    }

    private static func checkHello(_ hello: Value, signed: Bool) throws(FuzzViolation) {
        let result = Result { () throws(Handshake.Failure) in
            try Handshake.verifyHello(hello, acceptorNonce: acceptorNonce, cluster: cluster, key: key)
        }
        switch result {
        case .success(let (transcript, id, metadata)):
            try checkAccepted(hello, transcript: transcript, id: id, metadata: metadata)
        case .failure(.wrongCookie):
            try require(!signed, "a hello signed with the cookie failed its MAC check: \(hello)")
        case .failure(.versionMismatch), .failure(.wrongCluster), .failure(.malformed):
            break
        case .failure(let failure):
            throw FuzzViolation("verifyHello threw \(failure)")
        }
    }

    /// What must hold once the acceptor has accepted `hello`.
    private static func checkAccepted(
        _ hello: Value, transcript: Handshake.Transcript, id: PeerID, metadata: PeerMetadata
    ) throws(FuzzViolation) {
        try require(
            transcript.cluster == cluster && transcript.acceptorNonce == acceptorNonce
                && transcript.connectorID == hello["id"]?.stringValue && transcript.channel == hello["channel"]?.stringValue
                && hello["nonce"] == .bytes(transcript.connectorNonce)
                && identical(transcript.connectorMetadata, hello["meta"] ?? .nil),
            "the transcript is not the hello's: \(hello)")
        try require((try? PeerID(parsing: id.description)) == id, "peer id \(id) does not parse back from its text")
        try require((try? Handshake.metadata(from: Handshake.metadataValue(metadata))) == metadata, "\(metadata) changed")
        // The MAC binds this acceptor's nonce (no replay) and every byte of itself.
        var otherNonce = acceptorNonce
        otherNonce[0] ^= 1
        try require(refusedAsWrongCookie(hello, acceptorNonce: otherNonce), "a hello verified against another nonce")
        guard case .bytes(var mac)? = hello["mac"], !mac.isEmpty else { throw FuzzViolation("accepted without a MAC") }
        mac[mac.count - 1] ^= 0x80
        try require(refusedAsWrongCookie(replacingMAC(of: hello, with: mac), acceptorNonce: acceptorNonce), "a tampered MAC verified")
        // The acceptor's welcome verifies on the connector's side, for the acceptor alone.
        let welcome = try? MessagePack.decode(MessagePack.encode(Handshake.welcome(
            transcript, acceptorID: acceptor, metadata: Handshake.metadataValue(acceptorMetadata), key: key)))
        let verified = try? Handshake.verifyWelcome(welcome ?? .nil, transcript: transcript, expected: acceptor, key: key)
        try require(verified == acceptorMetadata, "the acceptor's welcome did not verify")
        let impostor = PeerID(name: "impostor", host: "127.0.0.1", port: 7000)
        let refused = Result { () throws(Handshake.Failure) in
            try Handshake.verifyWelcome(welcome ?? .nil, transcript: transcript, expected: impostor, key: key)
        }
        guard case .failure(.wrongPeer) = refused else { throw FuzzViolation("a welcome from the wrong peer gave \(refused)") }
    }

    private static func refusedAsWrongCookie(_ hello: Value, acceptorNonce nonce: [UInt8]) -> Bool {
        let result = Result { () throws(Handshake.Failure) in
            try Handshake.verifyHello(hello, acceptorNonce: nonce, cluster: cluster, key: key)
        }
        if case .failure(.wrongCookie) = result { return true }
        return false
    }

    private static func checkWelcome(_ welcome: Value, signed: Bool) throws(FuzzViolation) {
        let result = Result { () throws(Handshake.Failure) in
            try Handshake.verifyWelcome(welcome, transcript: connectorTranscript, expected: acceptor, key: key)
        }
        let fromAcceptor = welcome["id"]?.stringValue == acceptor.description
        let metadata = try? Handshake.metadata(from: welcome["meta"] ?? .nil)
        switch result {
        case .success(let verified):
            try require(fromAcceptor && verified == metadata, "verifyWelcome accepted \(welcome)")
        case .failure(.wrongCookie):
            try require(!signed, "a welcome signed with the cookie failed its MAC check: \(welcome)")
        case .failure(.wrongPeer(_, let actual)):
            try require(!fromAcceptor && actual == welcome["id"]?.stringValue, "wrongPeer(\(actual)) for \(welcome)")
        case .failure(.malformed):
            try require(!(signed && fromAcceptor && metadata != nil), "a signed welcome from the acceptor refused: \(welcome)")
        case .failure(let failure):
            throw FuzzViolation("verifyWelcome threw \(failure)")
        }
    }

    /// `message` (a map) with its `mac` entry set to `mac`, in canonical key order.
    private static func replacingMAC(of message: Value, with mac: [UInt8]) -> Value {
        guard case .map(let entries) = message else { return message }
        let others = entries.filter { !identical($0.key, "mac") }
        return .map((others + [Value.MapEntry("mac", .bytes(mac))]).sorted(by: Value.canonicalKeyOrder))
    }
}
