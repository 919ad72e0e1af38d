import NIOConcurrencyHelpers
import TrellisTransport

/// The application's request handler, swappable while the node runs.
///
/// Read on every inbound request from event-loop threads, written rarely from anywhere: a
/// lock-protected reference. The closure sits in a final class so that the lock's generic
/// storage only ever holds a reference: keeping the function value itself there and reading
/// it through `withLockedValue` re-wrapped it in one more reabstraction thunk per request,
/// until the thunk chain overflowed the stack.
final class RequestHandlerBox: Sendable {
    typealias Handler = @Sendable (InboundMessage, Responder) -> Void

    private final class Installed: Sendable {
        let handle: Handler
        init(_ handle: @escaping Handler) { self.handle = handle }
    }

    private let installed = NIOLockedValueBox<Installed?>(nil)

    func set(_ newHandler: @escaping Handler) {
        let replacement = Installed(newHandler)
        installed.withLockedValue { $0 = replacement }
    }

    func handle(_ message: InboundMessage, _ responder: Responder) {
        guard let current = installed.withLockedValue({ $0 }) else {
            responder.fail("no request handler on \(message.channel) at this node; call onRequest before sending requests")
            return
        }
        current.handle(message, responder)
    }
}
