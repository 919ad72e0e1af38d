import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Mutual TLS between the nodes of a cluster (`TransportConfig.tls`).
///
/// Every connection, inbound and outbound, on every channel, runs TLS 1.3, and both ends
/// present a certificate: each verifies the other's chain against the cluster's CA, and
/// refuses a peer without one. Host names are not checked: a peer's id names an address
/// that certificates need not list, so membership of the cluster is "holds a certificate
/// from the cluster's CA" — give each cluster a CA of its own, never a public one. The cookie
/// handshake still runs inside TLS.
///
/// The files are read and checked against each other when the settings are made, so that a
/// wrong file stops the node at start instead of failing every connection: the key must be
/// the certificate's, and the certificate must verify against the CA now (a TLS handshake of
/// this node with itself, in memory). Changed files take effect on the next start.
public struct TLSSettings: Sendable {
    /// The PEM file with this node's certificate, optionally followed by intermediate CAs.
    public let certificatePath: String
    /// The PEM file with the certificate's private key, unencrypted.
    public let privateKeyPath: String
    /// The PEM file with the cluster's CA certificate(s), which peers' certificates must chain to.
    public let caPath: String
    /// The TLS context both roles use: this node's certificate, the CA as the only trust root,
    /// peers' certificates required, TLS 1.3 only.
    let context: NIOSSLContext

    /// Reads and checks the three files.
    ///
    /// - Throws: `TLSSettingsError` naming the file at fault: one missing or unreadable, one
    ///   holding no PEM certificate or key, a key that is not the certificate's, or a
    ///   certificate that is expired or not signed by the CA.
    public init(certificatePath: String, privateKeyPath: String, caPath: String) throws(TLSSettingsError) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.caPath = caPath
        let chain = try Self.certificates(.certificate, at: certificatePath)
        let authorities = try Self.certificates(.ca, at: caPath)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: try PEMFile.read(.privateKey, at: privateKeyPath), format: .pem)
        } catch let error as TLSSettingsError {
            throw error
        } catch {
            throw .noPrivateKey(path: privateKeyPath)
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(authorities)
        configuration.certificateChain = chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(key)
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // The key parsed above, so BoringSSL refused it for not matching the certificate.
            throw .keyDoesNotMatchCertificate(keyPath: privateKeyPath, certificatePath: certificatePath)
        } catch {
            throw .unusable("\(error)")
        }
        if let failure = TLSSelfCheck.failure(of: context) {
            throw Self.explain(failure, leaf: chain[0], certificatePath: certificatePath, caPath: caPath)
        }
    }

    private static func certificates(_ file: TLSSettingsError.File, at path: String) throws(TLSSettingsError) -> [NIOSSLCertificate] {
        let bytes = try PEMFile.read(file, at: path)
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(bytes), !certificates.isEmpty else {
            throw .noCertificate(file, path: path)
        }
        return certificates
    }

    /// Why this node's own certificate failed the self-check: out of its validity period, or
    /// not chaining to the CA.
    private static func explain(
        _ failure: any Error, leaf: NIOSSLCertificate, certificatePath: String, caPath: String
    ) -> TLSSettingsError {
        let now = time(nil)
        if now > leaf.notValidAfter { return .certificateNotValidNow(path: certificatePath, expired: true) }
        if now < leaf.notValidBefore { return .certificateNotValidNow(path: certificatePath, expired: false) }
        return .certificateNotSignedByCA(certificatePath: certificatePath, caPath: caPath, detail: TLSFailure.names(of: failure))
    }
}
