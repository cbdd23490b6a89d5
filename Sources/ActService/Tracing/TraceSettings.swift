internal import Foundation

/// Where and how hms-act exports spans, read from the standard OpenTelemetry environment variables.
///
/// Tracing is off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
/// `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`) or `OTEL_TRACES_EXPORTER=otlp` asks for the default
/// (`http://localhost:4318/v1/traces`); `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off
/// whatever else is set. Only OTLP over HTTP with protobuf bodies is spoken (`OTEL_EXPORTER_OTLP_PROTOCOL`
/// `http/protobuf`, the default); every collector (the OpenTelemetry Collector, Jaeger, Tempo) accepts it.
public struct TraceSettings: Hashable, Sendable {
    /// The full URL spans are POSTed to.
    public var endpoint: String
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS` / `…_TRACES_HEADERS`: `key=value,key=value`).
    public var headers: [String: String]
    /// `service.name` (`OTEL_SERVICE_NAME`, default `hms-act`).
    public var serviceName: String
    /// `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`), besides `service.name`.
    public var resourceAttributes: [String: String]
    /// The share of traces kept, decided on the trace id (`OTEL_TRACES_SAMPLER` and `…_ARG`), so every
    /// replica keeps or drops the same runs whole.
    public var samplingRatio: Double
    /// How long spans wait to be sent (`OTEL_BSP_SCHEDULE_DELAY`, milliseconds, default 5000).
    public var scheduleDelay: Duration
    /// The most spans waiting; more are dropped and counted (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    public var maxQueueSize: Int
    /// The most spans in one request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    public var maxExportBatchSize: Int
    /// The longest one export may take (`OTEL_EXPORTER_OTLP_TIMEOUT` / `…_TRACES_TIMEOUT`, ms, default 10000).
    public var timeout: Duration

    public init(endpoint: String, headers: [String: String] = [:], serviceName: String = "hms-act",
        resourceAttributes: [String: String] = [:], samplingRatio: Double = 1, scheduleDelay: Duration = .seconds(5),
        maxQueueSize: Int = 2_048, maxExportBatchSize: Int = 512, timeout: Duration = .seconds(10))
    {
        self.endpoint = endpoint
        self.headers = headers
        self.serviceName = serviceName
        self.resourceAttributes = resourceAttributes
        self.samplingRatio = samplingRatio
        self.scheduleDelay = scheduleDelay
        self.maxQueueSize = maxQueueSize
        self.maxExportBatchSize = maxExportBatchSize
        self.timeout = timeout
    }

    /// A setting that cannot be used, with what to set instead.
    public struct Invalid: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The settings `environment` asks for, or `nil` when tracing is off.
    ///
    /// - Throws: ``Invalid`` naming the variable and the values it takes.
    public init?(environment: [String: String]) throws(Invalid) {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        if let disabled = value("OTEL_SDK_DISABLED"), disabled.lowercased() == "true" { return nil }
        let exporter = value("OTEL_TRACES_EXPORTER")?.lowercased()
        if exporter == "none" { return nil }
        if let exporter, exporter != "otlp" {
            throw Invalid(description: "OTEL_TRACES_EXPORTER=\(exporter) is not supported; hms-act exports otlp "
                + "(or none, to turn tracing off)")
        }
        let endpoint: String
        if let traces = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            endpoint = traces
        } else if let base = value("OTEL_EXPORTER_OTLP_ENDPOINT") {
            endpoint = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
        } else if exporter == "otlp" {
            endpoint = "http://localhost:4318/v1/traces"
        } else {
            return nil
        }
        guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://"),
            endpoint.dropFirst(endpoint.hasPrefix("https://") ? 8 : 7).first.map({ $0 != "/" }) ?? false
        else {
            throw Invalid(description: "the OTLP endpoint \(endpoint) is not an http:// or https:// URL; set "
                + "OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP address, e.g. http://otel-collector:4318")
        }
        let protocolName = value("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? value("OTEL_EXPORTER_OTLP_PROTOCOL")
        if let protocolName, protocolName != "http/protobuf" {
            throw Invalid(description: "OTEL_EXPORTER_OTLP_PROTOCOL=\(protocolName) is not supported; hms-act "
                + "sends http/protobuf, which every OTLP collector accepts on its HTTP port (4318)")
        }
        self.init(endpoint: endpoint)
        for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            if let text = value(name) { headers.merge(try Self.pairs(text, variable: name)) { _, later in later } }
        }
        if let name = value("OTEL_SERVICE_NAME") { serviceName = name }
        if let text = value("OTEL_RESOURCE_ATTRIBUTES") {
            resourceAttributes = try Self.pairs(text, variable: "OTEL_RESOURCE_ATTRIBUTES")
            if value("OTEL_SERVICE_NAME") == nil, let name = resourceAttributes["service.name"] { serviceName = name }
            resourceAttributes["service.name"] = nil
        }
        samplingRatio = try Self.ratio(sampler: value("OTEL_TRACES_SAMPLER"), argument: value("OTEL_TRACES_SAMPLER_ARG"))
        scheduleDelay = .milliseconds(try Self.integer(value("OTEL_BSP_SCHEDULE_DELAY"), "OTEL_BSP_SCHEDULE_DELAY",
            default: 5_000, range: 1...600_000))
        maxQueueSize = try Self.integer(value("OTEL_BSP_MAX_QUEUE_SIZE"), "OTEL_BSP_MAX_QUEUE_SIZE", default: 2_048,
            range: 1...1_000_000)
        maxExportBatchSize = try Self.integer(value("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            default: 512, range: 1...maxQueueSize)
        let timeoutName = value("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") != nil
            ? "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" : "OTEL_EXPORTER_OTLP_TIMEOUT"
        timeout = .milliseconds(try Self.integer(value(timeoutName), timeoutName, default: 10_000, range: 1...600_000))
    }

    /// Whether the trace `traceID` (32 hex digits) is kept: its last 16 hex digits, read as a number, below
    /// `samplingRatio` of their range (OpenTelemetry's `TraceIdRatioBased`, on the random part of the id).
    public func samples(traceID: String) -> Bool {
        if samplingRatio >= 1 { return true }
        if samplingRatio <= 0 { return false }
        guard let low = UInt64(traceID.suffix(16), radix: 16) else { return true }
        return Double(low >> 1) < samplingRatio * Double(UInt64.max >> 1)
    }

    private static func ratio(sampler: String?, argument: String?) throws(Invalid) -> Double {
        switch sampler?.lowercased() {
        case nil, "always_on", "parentbased_always_on": return 1
        case "always_off", "parentbased_always_off": return 0
        case "traceidratio", "parentbased_traceidratio":
            guard let argument else { return 1 }
            guard let ratio = Double(argument), ratio >= 0, ratio <= 1 else {
                throw Invalid(description: "OTEL_TRACES_SAMPLER_ARG=\(argument) is not a ratio; use a number from 0 to 1")
            }
            return ratio
        case let other?:
            throw Invalid(description: "OTEL_TRACES_SAMPLER=\(other) is not supported; use always_on, always_off or "
                + "traceidratio (the parentbased_ forms are read as these: a run's spans are kept or dropped whole, "
                + "by its trace id)")
        }
    }

    private static func integer(_ text: String?, _ variable: String, default fallback: Int, range: ClosedRange<Int>)
        throws(Invalid) -> Int
    {
        guard let text else { return fallback }
        guard let number = Int(text), range.contains(number) else {
            throw Invalid(description: "\(variable)=\(text) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// `key=value,key=value`, values percent-decoded (the W3C Baggage form the OTel variables use).
    private static func pairs(_ text: String, variable: String) throws(Invalid) -> [String: String] {
        var result: [String: String] = [:]
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            let key = parts.first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
            guard parts.count == 2, !key.isEmpty else {
                throw Invalid(description: "\(variable) has \"\(item)\", which is not key=value; write key=value,key=value")
            }
            let raw = String(parts[1]).trimmingCharacters(in: .whitespaces)
            result[key] = raw.removingPercentEncoding ?? raw
        }
        return result
    }
}
