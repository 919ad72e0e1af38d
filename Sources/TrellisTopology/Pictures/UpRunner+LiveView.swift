extension UpRunner {
    /// Runs the topology like ``run(watch:onEvent:progress:graph:)`` while `live` (when given)
    /// shows its members graph; `live` is stopped when the run ends, however it ends.
    public func run(
        watch: Bool = false, onEvent: @escaping @Sendable (String) -> Void = { _ in },
        progress: @escaping @Sendable (UpProgress) -> Void = { _ in }, live: LiveViewServer?
    ) async throws(TopologyRunError) -> UpReport {
        guard let live else { return try await run(watch: watch, onEvent: onEvent, progress: progress) }
        do {
            let report = try await run(watch: watch, onEvent: onEvent, progress: progress, graph: live.show)
            await live.stop()
            return report
        } catch {
            await live.stop()
            throw error
        }
    }
}
