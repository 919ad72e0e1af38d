import TrellisTransport

/// The application messages a node receives, in arrival order per connection.
///
/// The transport hands over the messages of each socket read together, and this sequence gives
/// them out one by one: a flood wakes the consuming task once per read, not once per message.
/// Iterate it from one task.
public struct InboundMessages: AsyncSequence, Sendable {
    public typealias Element = InboundMessage

    let batches: AsyncStream<[InboundMessage]>

    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline var batches: AsyncStream<[InboundMessage]>.AsyncIterator
        /// The rest of the current batch, last message first: taking one is a move, without
        /// touching the reference counts of its sender id and payload.
        @usableFromInline var rest: [InboundMessage] = []

        init(batches: AsyncStream<[InboundMessage]>.AsyncIterator) {
            self.batches = batches
        }

        /// The next message, waiting for the next batch when this one is used up; `nil` once
        /// the node has stopped. Runs on the caller's isolation, and is inlined into the
        /// caller's loop: taking a message from the current batch neither switches executors
        /// nor allocates a frame for the call.
        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async -> InboundMessage? {
            if let message = rest.popLast() { return message }
            return await nextBatch(isolation: actor)
        }

        /// Waits for the next non-empty batch and takes its first message.
        @usableFromInline
        mutating func nextBatch(isolation actor: isolated (any Actor)?) async -> InboundMessage? {
            while rest.isEmpty {
                // Reversed while this is its only reference, so in place: `rest = batch` first
                // would share the buffer, and reversing would copy every message.
                guard var batch = await batches.next(isolation: actor) else { return nil }
                batch.reverse()
                rest = batch
            }
            return rest.popLast()
        }

        public mutating func next() async -> InboundMessage? {
            await next(isolation: nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(batches: batches.makeAsyncIterator())
    }
}
