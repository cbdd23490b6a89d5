import ActService
import Testing

@Suite struct TraceSettingsTests {
    @Test func offUnlessAnEndpointOrTheOTLPExporterIsAskedFor() throws {
        #expect(try TraceSettings(environment: [:]) == nil)
        #expect(try TraceSettings(environment: ["OTEL_SERVICE_NAME": "x"]) == nil)
        #expect(try TraceSettings(environment: ["OTEL_TRACES_EXPORTER": "otlp"])?.endpoint == "http://localhost:4318/v1/traces")
        let off = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]
        #expect(try TraceSettings(environment: off.merging(["OTEL_SDK_DISABLED": "true"]) { $1 }) == nil)
        #expect(try TraceSettings(environment: off.merging(["OTEL_TRACES_EXPORTER": "none"]) { $1 }) == nil)
    }

    @Test func theEndpointsAndSettingsAreTheStandardOnes() throws {
        let settings = try #require(try TraceSettings(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc, x-tenant=city",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=ignored",
            "OTEL_SERVICE_NAME": "hms-act-eu",
            "OTEL_BSP_SCHEDULE_DELAY": "250", "OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "3000",
        ]))
        #expect(settings.endpoint == "http://collector:4318/v1/traces")
        #expect(settings.headers == ["authorization": "Bearer abc", "x-tenant": "city"])
        #expect(settings.serviceName == "hms-act-eu")
        #expect(settings.resourceAttributes == ["deployment.environment": "prod"])
        #expect(settings.scheduleDelay == .milliseconds(250) && settings.timeout == .seconds(3))
        #expect(settings.maxQueueSize == 100 && settings.maxExportBatchSize == 10)
        let traces = try TraceSettings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/otlp/traces"])
        #expect(traces?.endpoint == "https://b/otlp/traces")
    }

    @Test func badValuesAreRefusedWithWhatToSet() {
        let base = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]
        for (name, value, words) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
            ("OTEL_TRACES_EXPORTER", "zipkin", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http://"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon", "whole number"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2", "from 0 to 1"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "key=value"),
        ] {
            var environment = base
            environment[name] = value
            if name == "OTEL_TRACES_SAMPLER_ARG" { environment["OTEL_TRACES_SAMPLER"] = "traceidratio" }
            #expect {
                _ = try TraceSettings(environment: environment)
            } throws: { error in
                "\(error)".contains(words) && "\(error)".contains(name.hasPrefix("OTEL_EXPORTER_OTLP_ENDPOINT") ? "endpoint" : name)
            }
        }
    }

    @Test func samplingKeepsOrDropsATraceWholeAndAboutTheRatio() throws {
        let half = try #require(try TraceSettings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"]))
        var kept = 0
        for _ in 0..<2_000 {
            let id = SpanData.randomTraceID()
            let decision = half.samples(traceID: id)
            #expect(half.samples(traceID: id) == decision)
            if decision { kept += 1 }
        }
        #expect((800...1_200).contains(kept), "kept \(kept) of 2000 at 0.5")
        let none = try TraceSettings(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_TRACES_SAMPLER": "always_off"])
        #expect(none?.samples(traceID: SpanData.randomTraceID()) == false)
    }
}
