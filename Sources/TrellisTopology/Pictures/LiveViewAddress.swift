/// Where the live view listens: what `--live` names.
public struct LiveViewAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    /// The TCP port; 0 picks a free one.
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `HOST:PORT`, `[IPV6]:PORT` or a bare `PORT` (on 127.0.0.1).
    public init(parsing text: String) throws(PictureError) {
        let host: Substring
        let port: Substring
        if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            host = "127.0.0.1"
            port = Substring(text)
        }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? host.dropFirst().dropLast() : host
        guard let number = Int(port), (0...65_535).contains(number), !bare.isEmpty, !bare.contains(where: \.isWhitespace) else {
            throw .badAddress(text)
        }
        self.init(host: String(bare), port: number)
    }

    /// Whether only this machine can reach the address: 127.0.0.0/8, `::1` or `localhost`.
    public var isLoopback: Bool { host == "localhost" || TopologyHost.isLoopback(host) }

    /// `HOST:PORT`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
