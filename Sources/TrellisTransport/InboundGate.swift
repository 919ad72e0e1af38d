import NIOConcurrencyHelpers
import NIOCore

/// Admission control for one transport's inbound connections: counts those open and those
/// still handshaking (in all and per remote host), refuses the excess as soon as they are
/// accepted, and rate-limits the log lines about unauthenticated connections it closes, so a
/// flood costs a few lines per second rather than one per connection.
///
/// Used on the connections' event loops; the counts are shared by all of them, behind a lock.
final class InboundGate: Sendable {
    private struct State {
        var open = 0
        var pending = 0
        var pendingByHost: [String: Int] = [:]
        var lastReport: NIODeadline?
        var unreported = 0

        mutating func endHandshake(host: String) {
            pending -= 1
            let left = pendingByHost[host, default: 1] - 1
            pendingByHost[host] = left > 0 ? left : nil
        }
    }

    private let limits: ConnectionLimits
    private let state = NIOLockedValueBox(State())
    /// The shortest time between two log lines about closed unauthenticated connections.
    private static let reportInterval = TimeAmount.seconds(1)

    init(limits: ConnectionLimits) {
        self.limits = limits
    }

    /// Counts a new connection from `host` as open and handshaking, or says why it must be
    /// closed (and then counts nothing).
    func admit(host: String) -> ConnectionViolation? {
        state.withLockedValue { state in
            if state.open >= limits.maxInboundConnections {
                return .tooManyInboundConnections(limit: limits.maxInboundConnections)
            }
            if state.pending >= limits.maxPendingHandshakes {
                return .tooManyPendingHandshakes(limit: limits.maxPendingHandshakes)
            }
            let fromHost = state.pendingByHost[host, default: 0]
            if fromHost >= limits.maxPendingHandshakesPerHost {
                return .tooManyPendingHandshakesFromHost(host, limit: limits.maxPendingHandshakesPerHost)
            }
            state.open += 1
            state.pending += 1
            state.pendingByHost[host] = fromHost + 1
            return nil
        }
    }

    /// An admitted connection from `host` completed its handshake.
    func authenticated(host: String) {
        state.withLockedValue { $0.endHandshake(host: host) }
    }

    /// An admitted connection from `host` closed; `handshaking` if it never authenticated.
    func ended(host: String, handshaking: Bool) {
        state.withLockedValue { state in
            state.open -= 1
            if handshaking { state.endHandshake(host: host) }
        }
    }

    /// Whether to log the close of an unauthenticated connection now: at most one line per
    /// `reportInterval`. If so, returns how many closes went unlogged since the last line.
    func shouldReport() -> Int? {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            if let last = state.lastReport, now - last < Self.reportInterval {
                state.unreported += 1
                return nil
            }
            defer { state.unreported = 0 }
            state.lastReport = now
            return state.unreported
        }
    }
}
