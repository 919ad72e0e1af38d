import NIOConcurrencyHelpers
import TrellisTransport

/// The application's request handler, swappable while the node runs.
///
/// Read on every inbound request from event-loop threads, written rarely from anywhere: a
/// lock-protected box.
final class RequestHandlerBox: Sendable {
    typealias Handler = @Sendable (InboundMessage, Responder) -> Void

    private let handler = NIOLockedValueBox<Handler?>(nil)

    func set(_ newHandler: @escaping Handler) {
        handler.withLockedValue { $0 = newHandler }
    }

    func handle(_ message: InboundMessage, _ responder: Responder) {
        guard let current = handler.withLockedValue({ $0 }) else {
            responder.fail("no request handler on \(message.channel) at this node; call onRequest before sending requests")
            return
        }
        current(message, responder)
    }
}
