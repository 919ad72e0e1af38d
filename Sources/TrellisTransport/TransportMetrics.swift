import Metrics
import TrellisWire

/// The traffic metrics of one channel on one node, shared by all of that channel's connections
/// (the backend hands back the same series for the same labels).
///
/// Counted per socket read and per outbox flush, never per message, so a flood of small
/// messages costs a few atomic adds per read or write, not per message:
///
/// - `trellis_transport_messages_received_total{node, channel}`: frames read on established
///   connections (messages, requests, replies, heartbeats).
/// - `trellis_transport_bytes_received_total{node, channel}`: bytes read, framing included.
/// - `trellis_transport_messages_sent_total{node, channel}`: frames written by outbox flushes.
/// - `trellis_transport_bytes_sent_total{node, channel}`: bytes written by outbox flushes.
/// - `trellis_transport_connections{node, channel, direction}`: connections whose handshake
///   completed and that are still open; `direction` is `inbound` or `outbound`.
///
/// With no metrics backend bootstrapped, every update is a call into swift-metrics' no-op
/// handler.
final class ChannelMetrics: Sendable {
    private let messagesReceived: Counter
    private let bytesReceived: Counter
    private let messagesSent: Counter
    private let bytesSent: Counter
    private let connections: Meter

    /// The metrics of `channel` on `node`, made by `factory`.
    init(factory: any MetricsFactory, node: PeerID, channel: ChannelName, inbound: Bool) {
        let labels = [("node", node.description), ("channel", channel.name)]
        messagesReceived = Counter(label: "trellis_transport_messages_received_total", dimensions: labels, factory: factory)
        bytesReceived = Counter(label: "trellis_transport_bytes_received_total", dimensions: labels, factory: factory)
        messagesSent = Counter(label: "trellis_transport_messages_sent_total", dimensions: labels, factory: factory)
        bytesSent = Counter(label: "trellis_transport_bytes_sent_total", dimensions: labels, factory: factory)
        connections = Meter(
            label: "trellis_transport_connections", dimensions: labels + [("direction", inbound ? "inbound" : "outbound")],
            factory: factory)
    }

    /// One socket read: `messages` whole frames in `bytes` bytes.
    func received(messages: Int, bytes: Int) {
        if messages > 0 { messagesReceived.increment(by: Int64(messages)) }
        bytesReceived.increment(by: Int64(bytes))
    }

    /// One outbox flush: `messages` frames in `bytes` bytes.
    func sent(messages: Int, bytes: Int) {
        messagesSent.increment(by: Int64(messages))
        bytesSent.increment(by: Int64(bytes))
    }

    /// A connection of this channel completed its handshake.
    func opened() { connections.increment() }

    /// A connection of this channel that had completed its handshake closed.
    func closed() { connections.decrement() }
}
