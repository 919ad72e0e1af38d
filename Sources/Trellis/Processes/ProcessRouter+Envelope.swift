import TrellisPlacement
import TrellisWire

/// Calls and casts on the wire, on the `processes` channel.
///
/// An envelope is an array: capability, id, payload, hops, the sender's holder count and
/// holder digest, and for a call the milliseconds its caller still waits. The seventh field
/// is optional and later ones are ignored, so nodes that send more fields, or fewer than
/// seven, still understand each other.
extension ProcessRouter {
    /// A call or cast on the wire; it carries which holders the sender's `table` has, and a
    /// call the time its caller still waits (`timeout`, in milliseconds).
    func envelope(
        _ capability: String, _ id: String, _ payload: Value, hops: Int64, table: ShardTable?, timeout: Duration? = nil
    ) -> Value {
        var fields: [Value] = [
            .string(capability), .string(id), payload, .int(hops), .int(Int64(table?.holderCount ?? 0)),
            .int(Int64(bitPattern: table?.holderDigest ?? 0)),
        ]
        if let timeout { fields.append(.int(max(timeout.wholeMilliseconds, 1))) }
        return .array(fields)
    }

    /// A call's or cast's fields, decoded from its envelope.
    struct Envelope {
        let capability: String
        let id: String
        let payload: Value
        let hops: Int64
        /// The holders of the capability in the sender's table.
        let senderView: HolderView
        /// How long the caller still waits for a call's reply; `nil` for a cast, or from a
        /// sender that does not say (fields past the sixth are optional).
        let timeout: Duration?

        init?(_ value: Value) {
            guard case .array(let parts) = value, parts.count >= 6,
                  case .string(let capability) = parts[0], case .string(let id) = parts[1], case .int(let hops) = parts[3],
                  case .int(let count) = parts[4], case .int(let digest) = parts[5]
            else { return nil }
            (self.capability, self.id, self.payload, self.hops) = (capability, id, parts[2], hops)
            self.senderView = HolderView(count: Int(count), digest: UInt64(bitPattern: digest))
            if parts.count > 6, case .int(let milliseconds) = parts[6], milliseconds > 0 {
                timeout = .milliseconds(milliseconds)
            } else {
                timeout = nil
            }
        }
    }
}
