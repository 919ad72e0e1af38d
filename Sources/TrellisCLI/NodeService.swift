import Logging
import ServiceLifecycle
import Trellis

/// A running node as a swift-service-lifecycle service: it runs until its service group shuts
/// down gracefully, then leaves the cluster (the overlay's `leave` runs and processes are
/// handed off) and returns. Cancelled instead, it stops the node at once.
struct NodeService: Service {
    let node: TrellisNode

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            await node.stop()
            throw error
        }
        emit("leaving")
        await node.leave()
    }

    /// Runs `node` in a service group until SIGTERM or SIGINT, then leaves gracefully.
    static func runUntilSignalled(_ node: TrellisNode, logger: Logger) async throws {
        let group = ServiceGroup(services: [NodeService(node: node)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}
