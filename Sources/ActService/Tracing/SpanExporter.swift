internal import ActThreads
public import Logging
public import ServiceLifecycle
internal import Synchronization

/// Sends finished spans to an OTLP/HTTP collector in the background (OpenTelemetry's batch span processor):
/// ``submit(_:)`` only queues, a full batch or ``TraceSettings/scheduleDelay`` sends, and a graceful
/// shutdown sends what is left, after the consumers stopped (it runs first in the service group, so it
/// stops last).
///
/// Spans never hold work back: a queue over ``TraceSettings/maxQueueSize`` drops the newest, and an export
/// that fails (after one retry for 429, 502, 503, 504 or no answer) drops its batch; both are counted in
/// `hms_act_spans_dropped_total` and logged at most once a minute.
public final class SpanExporter: Service, Sendable {
    public let settings: TraceSettings
    private let transport: any HTTPCallTransport
    private let logger: Logger
    private let resource: [SpanData.Attribute]
    private let queue = Mutex(Queue())
    private let wake = Signal()
    private let sleep: @Sendable (Duration) async throws -> Void

    private struct Queue {
        var spans: [SpanData] = []
        /// When a drop was last logged (monotonic milliseconds), so a collector that is down logs once a minute.
        var lastWarning: Int64?
    }

    /// - Parameter transport: How requests are sent (``AsyncHTTPCallTransport`` in the service).
    public init(settings: TraceSettings, transport: any HTTPCallTransport, logger: Logger,
        sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) })
    {
        self.settings = settings
        self.transport = transport
        self.logger = logger
        self.sleep = sleep
        var resource = [SpanData.Attribute("service.name", .string(settings.serviceName))]
        for (key, value) in settings.resourceAttributes.sorted(by: { $0.key < $1.key }) {
            resource.append(SpanData.Attribute(key, .string(value)))
        }
        self.resource = resource
    }

    /// Queues finished spans of sampled traces.
    public func submit(_ spans: [SpanData]) {
        let sampled = settings.samplingRatio >= 1 ? spans : spans.filter { settings.samples(traceID: $0.traceID) }
        guard !sampled.isEmpty else { return }
        let (queued, dropped) = queue.withLock { queue in
            let room = max(0, settings.maxQueueSize - queue.spans.count)
            queue.spans += sampled.prefix(room)
            return (queue.spans.count, max(0, sampled.count - room))
        }
        if dropped > 0 { self.dropped(dropped, reason: "queue_full", detail: "more than OTEL_BSP_MAX_QUEUE_SIZE spans waited") }
        if queued >= settings.maxExportBatchSize { wake.signal() }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                _ = await self.wake.wait(timeout: self.settings.scheduleDelay)
                await self.flush()
            }
        }
        await flush()
        await transport.shutdown()
    }

    /// Sends every queued span now.
    public func flush() async {
        while true {
            let batch = queue.withLock { queue -> [SpanData] in
                let batch = Array(queue.spans.prefix(settings.maxExportBatchSize))
                queue.spans.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            await send(batch)
        }
    }

    private func send(_ batch: [SpanData]) async {
        var headers = settings.headers
        headers["Content-Type"] = "application/x-protobuf"
        let call = HTTPCall(method: "POST", url: settings.endpoint, service: "otlp", headers: headers,
            body: OTLPTraceEncoding.request(batch, resource: resource, scope: "hms-act", version: Self.scopeVersion),
            taskID: "", attempt: 1)
        var failure = ""
        for attempt in 1...2 {
            do {
                let response = try await transport.send(call, timeout: settings.timeout, maxBodyBytes: 64 * 1_024)
                if (200..<300).contains(response.status) {
                    ServiceMetrics.spansExported(count: batch.count)
                    return
                }
                failure = "the collector answered HTTP \(response.status)"
                    + (response.body.isEmpty ? "" : ": " + String(decoding: response.body.prefix(200), as: UTF8.self))
                guard [429, 502, 503, 504].contains(response.status) else { break }
            } catch {
                failure = "\(error)"
            }
            if attempt == 1 { try? await sleep(.seconds(1)) }
        }
        dropped(batch.count, reason: "export_failed", detail: failure)
    }

    private func dropped(_ count: Int, reason: String, detail: String) {
        ServiceMetrics.spansDropped(count: count, reason: reason)
        let now = DatabaseClock.monotonicMilliseconds()
        let log = queue.withLock { queue -> Bool in
            if let last = queue.lastWarning, now - last < 60_000 { return false }
            queue.lastWarning = now
            return true
        }
        if log {
            logger.warning("spans dropped (logged at most once a minute; hms_act_spans_dropped_total counts them all)",
                metadata: ["spans.count": "\(count)", "spans.reason": "\(reason)", "error": "\(detail)",
                    "otlp.endpoint": "\(settings.endpoint)"])
        }
    }

    /// The instrumentation scope's version: the span shapes' own version, raised when they change.
    static let scopeVersion = "1"
}
