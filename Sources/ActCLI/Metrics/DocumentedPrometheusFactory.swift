import ActService
import Metrics
import Prometheus

/// The swift-metrics factory `serve` installs: ``PrometheusMetricsFactory``'s behaviour, plus each metric's
/// help text (`# HELP`) and histogram buckets from ``ServiceMetricsCatalog``.
///
/// `PrometheusMetricsFactory` registers every metric with an empty help text, and the registry refuses a
/// second registration of a name with a different one, so the help cannot be added afterwards: this
/// factory registers each metric with its help text in the first place.
struct DocumentedPrometheusFactory: MetricsFactory {
    /// Buckets, removal and the defaults come from the stock factory.
    private let base: PrometheusMetricsFactory
    private let help: [String: String]

    init(registry: PrometheusCollectorRegistry, help: [String: String] = ServiceMetricsCatalog.help,
        durationBuckets: [String: [Duration]] = ServiceMetricsCatalog.durationBuckets)
    {
        var base = PrometheusMetricsFactory(registry: registry)
        base.durationHistogramBuckets = durationBuckets
        self.base = base
        self.help = help
    }

    private var registry: PrometheusCollectorRegistry { base.registry }

    /// The metric's full name as its descriptor (no namespace, subsystem or unit parts to join).
    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(descriptor: descriptor(label), labels: dimensions,
            buckets: base.valueHistogramBuckets[label] ?? base.defaultValueHistogramBuckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions,
            buckets: base.durationHistogramBuckets[label] ?? base.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        base.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
