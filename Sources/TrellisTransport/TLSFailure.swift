import NIOSSL

/// A TLS error on a connection, as log lines and events report it: what went wrong and what to
/// do, in words, then the TLS library's own error names.
struct TLSFailure: Error, CustomStringConvertible {
    enum Kind {
        /// This node refused the peer's certificate.
        case peerCertificateRefused
        /// The peer presented no certificate.
        case noPeerCertificate
        /// The peer refused this node's certificate (it sent an alert saying so).
        case certificateRefusedByPeer
        /// The peer's bytes are not TLS records.
        case notTLS
        /// The peer hung up in the middle of the handshake.
        case closedDuringHandshake
        /// Anything else the TLS library reported.
        case other
    }

    let kind: Kind
    /// The TLS library's error names, e.g. `CERTIFICATE_VERIFY_FAILED`.
    let names: String

    /// The failure `error` describes; `nil` if it is not a TLS error.
    init?(_ error: any Error) {
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        names = Self.names(of: error)
        kind = Self.kind(of: names)
    }

    var description: String {
        let words: String
        switch kind {
        case .peerCertificateRefused:
            words = "refused the peer's certificate: it does not verify against this node's CA (--tls-ca); "
                + "it is signed by another CA, expired or not valid yet"
        case .noPeerCertificate:
            words = "the peer presented no certificate: every node of a TLS cluster needs --tls-cert and --tls-key"
        case .certificateRefusedByPeer:
            words = "the peer refused this node's certificate: it trusts another CA; "
                + "this node's certificate must be issued by the cluster's CA"
        case .notTLS:
            words = "the peer does not speak TLS: every node of a cluster needs TLS, or none"
        case .closedDuringHandshake:
            words = "the peer closed the connection during the TLS handshake: it may have refused this "
                + "node's certificate, or not use TLS"
        case .other:
            words = "TLS failed"
        }
        return "TLS: \(words) [\(names)]"
    }

    /// The reason names in `error`: for the TLS library's errors, the last part of each of its
    /// error strings (`Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:
    /// CERTIFICATE_VERIFY_FAILED at …/handshake.cc:320`), without the source location.
    static func names(of error: any Error) -> String {
        let stack: [BoringSSLInternalError]
        switch error {
        case NIOSSLError.handshakeFailed(.sslError(let errors)), BoringSSLError.sslError(let errors):
            stack = errors
        default:
            return "\(error)"
        }
        let names = stack.map { entry in
            var text = "\(entry)"
            if let location = text.ranges(of: " at ").last { text = String(text[..<location.lowerBound]) }
            let name = text.split(separator: ":").last.map(String.init) ?? text
            return name.trimmingCharacters(of: " ")
        }
        return names.isEmpty ? "\(error)" : names.joined(separator: ", ")
    }

    private static func kind(of names: String) -> Kind {
        let notTLS = ["WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "PACKET_LENGTH_TOO_LONG", "UNEXPECTED_RECORD"]
        if names.contains("CERTIFICATE_VERIFY_FAILED") { return .peerCertificateRefused }
        if names.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return .noPeerCertificate }
        if names.contains("ALERT"), names.contains("CERTIFICATE") || names.contains("UNKNOWN_CA") {
            return .certificateRefusedByPeer
        }
        if notTLS.contains(where: names.contains) { return .notTLS }
        if names.contains("EOF during handshake") { return .closedDuringHandshake }
        return .other
    }
}

extension String {
    /// The string without leading and trailing `character`s.
    fileprivate func trimmingCharacters(of character: Character) -> String {
        String(drop { $0 == character }.reversed().drop { $0 == character }.reversed())
    }
}
