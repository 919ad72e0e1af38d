/// Why a picture of the members graph could not be written, or the live view not served; each
/// description says what to do.
public enum PictureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file could not be written.
    case cannotWrite(path: String, reason: String)
    /// `--png` needs Graphviz's `dot`, and no `dot` is on `PATH`.
    case graphvizMissing
    /// `dot` ran and failed.
    case graphvizFailed(status: Int32, message: String)
    /// The live view's address is not `HOST:PORT` or `PORT`.
    case badAddress(String)
    /// The live view was asked to listen outside loopback without the flag that allows it.
    case notLoopback(host: String)
    /// The live view could not listen on its address.
    case cannotServe(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotWrite(let path, let reason):
            let reason = reason.hasSuffix(".") ? String(reason.dropLast()) : reason
            return "cannot write \(path) (\(reason)); check that its folder exists and is writable"
        case .graphvizMissing:
            return "Graphviz `dot` is not on PATH, so no PNG was written; install it (Debian: apt-get install graphviz) or use --svg, which needs nothing"
        case .graphvizFailed(let status, let message):
            return "`dot -Tpng` failed with status \(status): \(message); --dot FILE writes its input for a closer look"
        case .badAddress(let text):
            return "\"\(text)\" is not an address to serve on; write HOST:PORT (127.0.0.1:8080, [::1]:8080) or just PORT"
        case .notLoopback(let host):
            return "\(host) is not a loopback address: anyone who can reach it could watch the cluster; "
                + "serve on 127.0.0.1, or pass --live-public to accept that"
        case .cannotServe(let address, let reason):
            return "cannot serve the live view on \(address): \(reason); pick another port (0 picks a free one)"
        }
    }
}
