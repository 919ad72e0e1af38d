/// Why `TLSSettings` could not be made from its files. Each description names the file at
/// fault and says what to do; `docs/tls.md` shows how to make a CA and node certificates.
public enum TLSSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Which file of the settings a problem is about.
    public enum File: String, Sendable, Equatable {
        /// This node's certificate (`--tls-cert`).
        case certificate = "certificate (--tls-cert)"
        /// This node's private key (`--tls-key`).
        case privateKey = "private key (--tls-key)"
        /// The cluster's CA certificate (`--tls-ca`).
        case ca = "CA certificate (--tls-ca)"
    }

    /// The file does not exist or cannot be read.
    case unreadable(File, path: String, reason: String)
    /// The certificate or CA file holds no PEM certificate.
    case noCertificate(File, path: String)
    /// The key file holds no PEM private key, or only an encrypted one.
    case noPrivateKey(path: String)
    /// The private key is not the certificate's.
    case keyDoesNotMatchCertificate(keyPath: String, certificatePath: String)
    /// This node's certificate has expired, or is not valid yet.
    case certificateNotValidNow(path: String, expired: Bool)
    /// This node's certificate does not verify against the CA (another CA signed it, or the CA
    /// expired): peers that trust that CA would refuse it.
    case certificateNotSignedByCA(certificatePath: String, caPath: String, detail: String)
    /// The TLS library refused the settings for another reason, given here.
    case unusable(String)

    public var description: String {
        switch self {
        case .unreadable(let file, let path, let reason):
            return "cannot read the TLS \(file.rawValue) \(path): \(reason); check the path and the file's permissions"
        case .noCertificate(let file, let path):
            return "the TLS \(file.rawValue) \(path) holds no PEM certificate ('-----BEGIN CERTIFICATE-----'); "
                + "pass the certificate file, not a key or a DER file (docs/tls.md)"
        case .noPrivateKey(let path):
            return "the TLS private key (--tls-key) \(path) holds no unencrypted PEM private key; pass the key file "
                + "made with the certificate ('-----BEGIN PRIVATE KEY-----'), without a passphrase (docs/tls.md)"
        case .keyDoesNotMatchCertificate(let key, let certificate):
            return "the TLS private key \(key) is not the key of the certificate \(certificate); "
                + "pass the key the certificate was made from, or make a new certificate for this key"
        case .certificateNotValidNow(let path, let expired):
            let state = expired ? "has expired" : "is not valid yet"
            return "the TLS certificate \(path) \(state) (see `openssl x509 -in \(path) -noout -dates`); "
                + (expired ? "issue a new one from the cluster's CA" : "check this machine's clock")
        case .certificateNotSignedByCA(let certificate, let ca, let detail):
            return "the TLS certificate \(certificate) does not verify against the CA in \(ca) (\(detail)): another CA "
                + "signed it, or the CA has expired, so peers would refuse it; pass the cluster's CA, or issue this "
                + "node's certificate from it "
                + "(`openssl verify -CAfile \(ca) \(certificate)` shows why)"
        case .unusable(let reason):
            return "the TLS settings cannot be used: \(reason); see docs/tls.md"
        }
    }
}
