/// Why a DNS lookup failed.
public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name cannot be asked for: the name, and why.
    case invalidName(String, String)
    /// The server address is not usable: the address, and why.
    case invalidServer(String, String)
    /// The reply does not parse as DNS: what is wrong with it.
    case malformed(String)
    /// No matching reply came: the server, the time waited per try, and how many tries.
    case timeout(server: String, wait: Duration, attempts: Int)
    /// The server answered with an error code other than "no such name": the name and code.
    case serverError(name: String, rcode: UInt8)
    /// A socket to the server failed: the server, and what went wrong.
    case network(server: String, String)

    public var description: String {
        switch self {
        case .invalidName(let name, let why):
            return "invalid DNS name '\(name)': \(why); use a fully qualified name such as "
                + "_trellis._tcp.trellis.default.svc.cluster.local"
        case .invalidServer(let server, let why):
            return "invalid DNS server '\(server)': \(why); give an IP address and port, e.g. 10.96.0.10:53"
        case .malformed(let why):
            return "malformed DNS reply: \(why); check that the server address is a DNS server"
        case .timeout(let server, let wait, let attempts):
            return "no reply from DNS server \(server) after \(attempts) tries of \(wait) each; "
                + "check the server address and that it is reachable"
        case .serverError(let name, let rcode):
            return "DNS server answered \(Self.rcodeName(rcode)) for \(name); check the name is fully "
                + "qualified and that this server serves it"
        case .network(let server, let why):
            return "cannot talk to DNS server \(server): \(why)"
        }
    }

    static func rcodeName(_ rcode: UInt8) -> String {
        switch rcode {
        case 1: return "FORMERR (format error)"
        case 2: return "SERVFAIL (server failure)"
        case 4: return "NOTIMP (not implemented)"
        case 5: return "REFUSED"
        default: return "error code \(rcode)"
        }
    }
}
