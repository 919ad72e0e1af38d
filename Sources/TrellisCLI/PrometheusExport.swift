import Metrics
import Prometheus

/// The metrics of `trellis node`: a Prometheus registry behind the process-wide metrics
/// system, served by the admin interface's `GET /metrics`.
enum PrometheusExport {
    /// Script callbacks take microseconds to milliseconds: finer buckets than the defaults.
    static let scriptBuckets: [Duration] = [
        .microseconds(10), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1),
    ]

    /// Bootstraps `MetricsSystem` with Prometheus and returns the registry; once per process.
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["trellis_script_callback_duration_seconds"] = scriptBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
