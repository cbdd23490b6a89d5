import ActService
import Hummingbird

/// A server span for every HTTP request, exported with the runs' spans (tracing on: ``SpanExporter``).
///
/// The span continues the request's `traceparent` when it has one, and the route then sees this span's
/// context as the request's `traceparent`, so a run started by the request hangs under it. It is named `METHOD /route` with the
/// route's template (`GET /v1/runs/{id}`, never a run id; the method alone when no route matched) and carries
/// OpenTelemetry's HTTP server attributes. Outermost, so it sees the status ``ProblemMiddleware`` answered with.
struct SpanMiddleware<Context: RequestContext>: RouterMiddleware {
    let exporter: SpanExporter

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = SpanData.now()
        let parent = SpanData.parse(traceparent: request.traceparent)
        let spanID = SpanData.randomSpanID()
        var routed = request
        if let parent {
            // What the route continues (a trigger posted to /v1/events, a run started): this span, not the caller's.
            var head = request.head
            head.headerFields[values: .init("traceparent")!] = ["00-\(parent.traceID)-\(spanID)-01"]
            routed = Request(head: head, body: request.body)
        }
        var status = 500
        defer {
            let method = request.method.rawValue
            let route = context.endpointPath  // the template Hummingbird matched: /v1/runs/{id}
            var attributes: [SpanData.Attribute] = [
                .init("http.request.method", .string(method)), .init("url.path", .string(request.uri.path)),
                .init("url.scheme", "http"), .init("http.response.status_code", .int(Int64(status))),
            ]
            if let route { attributes.append(.init("http.route", .string(route))) }
            exporter.submit([SpanData(traceID: parent?.traceID ?? SpanData.randomTraceID(), spanID: spanID,
                parentSpanID: parent?.spanID, name: route.map { "\(method) \($0)" } ?? method, kind: .server,
                startNanoseconds: start, endNanoseconds: SpanData.now(), attributes: attributes,
                status: status >= 500 ? .error("HTTP \(status)") : .unset)])
        }
        let response = try await next(routed, context)
        status = response.status.code
        return response
    }
}
