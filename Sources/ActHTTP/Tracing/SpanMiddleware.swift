import ActService
import Hummingbird

/// A server span for every HTTP request, exported with the runs' spans (tracing on: ``SpanExporter``).
///
/// The span continues the request's `traceparent` when it has one; it is named `METHOD /route` with the
/// route's template (`GET /v1/runs/{id}`, never a run id; the method alone when no route matched) and carries
/// OpenTelemetry's HTTP server attributes. Outermost, so it sees the status ``ProblemMiddleware`` answered with.
struct SpanMiddleware<Context: RequestContext>: RouterMiddleware {
    let exporter: SpanExporter

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let start = SpanData.now()
        var status = 500
        defer {
            let parent = SpanData.parse(traceparent: request.traceparent)
            let method = request.method.rawValue
            let route = context.endpointPath  // the template Hummingbird matched: /v1/runs/{id}
            var attributes: [SpanData.Attribute] = [
                .init("http.request.method", .string(method)), .init("url.path", .string(request.uri.path)),
                .init("url.scheme", "http"), .init("http.response.status_code", .int(Int64(status))),
            ]
            if let route { attributes.append(.init("http.route", .string(route))) }
            exporter.submit([SpanData(traceID: parent?.traceID ?? SpanData.randomTraceID(), spanID: SpanData.randomSpanID(),
                parentSpanID: parent?.spanID, name: route.map { "\(method) \($0)" } ?? method, kind: .server,
                startNanoseconds: start, endNanoseconds: SpanData.now(), attributes: attributes,
                status: status >= 500 ? .error("HTTP \(status)") : .unset)])
        }
        let response = try await next(request, context)
        status = response.status.code
        return response
    }
}
