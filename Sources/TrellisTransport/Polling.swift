/// Checks `condition` every `interval` until it holds (`true`) or `limit` has passed (`false`).
///
/// For waits on state that changes on other threads without telling anyone: dials still
/// starting, peers closing connections, calls still being delivered.
package func poll(every interval: Duration, for limit: Duration, until condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
    return true
}
