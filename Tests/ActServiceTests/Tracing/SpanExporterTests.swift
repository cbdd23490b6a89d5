import ActService
import Logging
import Synchronization
import Testing

/// The batch span processor's bounds: a full queue drops the newest, a failed export is tried once more
/// only when the collector may recover (429, 5xx gateway errors, no answer), and nothing waits for spans.
@Suite struct SpanExporterTests {
    final class Collector: HTTPCallTransport {
        let answers: Mutex<[Int]>
        let calls = Mutex<[HTTPCall]>([])

        init(answers: [Int]) { self.answers = Mutex(answers) }

        func send(_ call: HTTPCall, timeout: Duration, maxBodyBytes: Int) async throws(HTTPCallTransportError)
            -> HTTPCallResponse
        {
            calls.withLock { $0.append(call) }
            let status = answers.withLock { $0.isEmpty ? 200 : $0.removeFirst() }
            if status == 0 { throw .unreachable("connection refused") }
            return HTTPCallResponse(status: status)
        }

        func shutdown() async {}
    }

    static func span(_ name: String) -> SpanData {
        SpanData(traceID: SpanData.randomTraceID(), spanID: SpanData.randomSpanID(), parentSpanID: nil, name: name,
            kind: .internal, startNanoseconds: 1, endNanoseconds: 2)
    }

    static func exporter(_ collector: Collector, queue: Int = 2_048, batch: Int = 512) -> SpanExporter {
        SpanExporter(settings: TraceSettings(endpoint: "http://127.0.0.1:4318/v1/traces", headers: ["x-key": "k"],
            maxQueueSize: queue, maxExportBatchSize: batch), transport: collector, logger: Logger(label: "test"),
            sleep: { _ in })
    }

    @Test func spansGoInBatchesWithTheHeadersAndAFullQueueDropsTheNewest() async {
        let collector = Collector(answers: [])
        let exporter = Self.exporter(collector, queue: 5, batch: 2)
        exporter.submit((0..<7).map { Self.span("s\($0)") })
        await exporter.flush()
        let calls = collector.calls.withLock { $0 }
        #expect(calls.count == 3, "5 queued spans in batches of 2; 2 dropped")
        #expect(calls.allSatisfy { $0.method == "POST" && $0.url == "http://127.0.0.1:4318/v1/traces" })
        #expect(calls.allSatisfy { $0.headers["Content-Type"] == "application/x-protobuf" && $0.headers["x-key"] == "k" })
        #expect(calls.map { String(decoding: $0.body, as: UTF8.self).contains("s4") } == [false, false, true])
        #expect(!calls.contains { String(decoding: $0.body, as: UTF8.self).contains("s5") })
    }

    @Test func aCollectorThatMayRecoverIsTriedOnceMoreAndOneThatRefusesIsNot() async {
        for (answers, expected) in [([503, 200], 2), ([0, 0], 2), ([429, 503], 2), ([400], 1), ([200], 1)] {
            let collector = Collector(answers: answers)
            let exporter = Self.exporter(collector)
            exporter.submit([Self.span("x")])
            await exporter.flush()
            #expect(collector.calls.withLock { $0.count } == expected, "answers \(answers)")
        }
    }

    @Test func unsampledTracesAreNotQueued() async throws {
        let collector = Collector(answers: [])
        var settings = TraceSettings(endpoint: "http://127.0.0.1:4318/v1/traces")
        settings.samplingRatio = 0
        let exporter = SpanExporter(settings: settings, transport: collector, logger: Logger(label: "test"))
        exporter.submit([Self.span("x")])
        await exporter.flush()
        #expect(collector.calls.withLock { $0.isEmpty })
    }
}
