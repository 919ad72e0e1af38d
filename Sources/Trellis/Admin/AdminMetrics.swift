import Foundation
import NIOHTTP1
import Prometheus

/// `GET /metrics` and the token check every route shares.
extension AdminRoutes {
    /// Whether the request carries `Authorization: Bearer <token>`.
    static func isAuthorized(_ head: HTTPRequestHead, token: String) -> Bool {
        head.headers["Authorization"].first == "Bearer \(token)"
    }

    /// The answer to a request without the right token.
    static var unauthorized: [String: Any] { ["error": "missing or wrong token: send `Authorization: Bearer <token>`"] }

    /// The answer to `GET /metrics` (status, content type, body): the registry's metrics in
    /// Prometheus' text format; `nil` for any other request.
    static func metrics(
        _ head: HTTPRequestHead, token: String, registry: PrometheusCollectorRegistry?
    ) -> (HTTPResponseStatus, String, Data)? {
        guard head.method == .GET, URLComponents(string: head.uri)?.path == "/metrics" else { return nil }
        let json = "application/json"
        guard isAuthorized(head, token: token) else { return (.unauthorized, json, encode(unauthorized) + Data("\n".utf8)) }
        guard let registry else {
            let error = "this node exports no metrics: start its admin interface with a Prometheus registry (`trellis node` does)"
            return (.notFound, json, encode(["error": error]) + Data("\n".utf8))
        }
        return (.ok, "text/plain; version=0.0.4; charset=utf-8", Data(registry.emitToBuffer()))
    }
}
