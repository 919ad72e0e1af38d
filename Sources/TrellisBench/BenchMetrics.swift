import Metrics
import Prometheus

/// The metrics backend of a benchmark process.
enum BenchMetrics {
    /// Sends every metric to a Prometheus registry, as `trellis node` does, so that the figures
    /// include what recording costs; once per process.
    static func bootstrapPrometheus() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
    }
}
