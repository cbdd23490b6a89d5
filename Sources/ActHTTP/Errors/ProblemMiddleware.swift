import ActPlaybook
import ActService
internal import Foundation
import Hummingbird
import Logging

/// Turns every error a route or middleware throws into an ``APIProblem`` response.
///
/// | thrown | answer |
/// |---|---|
/// | ``APIProblem`` | itself |
/// | `PlaybookLoadError` | 422 `invalid-playbook` with `diagnostics` |
/// | `MessageRejection` | 400 `unreadable-message` with the reason |
/// | `DecodingError` (request bodies) | 400 `invalid-body` naming the field, with `errors` |
/// | body above the limit | 413 `body-too-large` |
/// | PostgreSQL or RabbitMQ unreachable, overloaded or timing out (``ApplyFailure/isUnavailable(_:)``) | 503 `unavailable` with `Retry-After` |
/// | a value PostgreSQL refuses (``ApplyFailure/permanent(reason:)``: U+0000, a date out of range) | 422 `unstorable-body` |
/// | Hummingbird's `HTTPError` (unknown route: 404) | its status |
/// | anything else | 500 `internal` with a generic detail; the error is logged, never sent |
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            var problem = problem(for: error, request: request, logger: context.logger)
            if problem.instance == nil { problem.instance = request.uri.path }
            return try problem.response(from: request, context: context)
        }
    }

    func problem(for error: any Error, request: Request, logger: Logger) -> APIProblem {
        switch error {
        case let problem as APIProblem:
            return problem
        case let error as PlaybookLoadError:
            return .invalidPlaybook(error)
        case let rejection as MessageRejection:
            return APIProblem(.badRequest, slug: "unreadable-message", title: "Unreadable message",
                detail: rejection.reason)
        case let error as DecodingError:
            let (field, reason) = Self.describe(error)
            return APIProblem(.badRequest, slug: "invalid-body", title: "Invalid request body",
                detail: field.isEmpty ? reason : "`\(field)`: \(reason)",
                extensions: ["errors": [["field": .string(field), "message": .string(reason)]]])
        case let error as HTTPError:
            return Self.problem(status: error.status, detail: error.body)
        case let error as any HTTPResponseError:
            if error.status == .contentTooLarge { return .bodyTooLarge }
            return Self.problem(status: error.status, detail: nil)
        case _ where ApplyFailure.isUnavailable(error):
            logger.warning("request refused: a server is unavailable", metadata: [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "error": "\(error)",
            ])
            return .unavailable
        default:
            if case .permanent(let reason) = ApplyFailure(error) {
                return APIProblem(.unprocessableContent, slug: "unstorable-body", title: "The body cannot be stored",
                    detail: reason)
            }
            logger.error("request failed", metadata: [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)",
                "error": "\(String(reflecting: type(of: error))): \(error)",
            ])
            return APIProblem(.internalServerError, slug: "internal", title: "Internal server error",
                detail: "the request could not be completed; the error is in the service log")
        }
    }

    static func problem(status: HTTPResponse.Status, detail: String?) -> APIProblem {
        switch status.code {
        case 404:
            return APIProblem(status, slug: "not-found", title: "Not found",
                detail: detail ?? "no such route; see /openapi.yaml for the API")
        case 413:
            return .bodyTooLarge
        default:
            let slug = status.reasonPhrase.lowercased().split(separator: " ").joined(separator: "-")
            return APIProblem(status, slug: slug.isEmpty ? "http-\(status.code)" : slug, title: status.reasonPhrase,
                detail: detail ?? status.reasonPhrase)
        }
    }

    /// The dotted path of the field a decoding error is about, and what is wrong with it.
    static func describe(_ error: DecodingError) -> (field: String, reason: String) {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return (path(context.codingPath), "must be \(Self.typeName(type))")
        case .valueNotFound(let type, let context):
            return (path(context.codingPath), "must be \(Self.typeName(type)), not null")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            return (field, field.isEmpty ? "the body is not valid JSON" : context.debugDescription)
        @unknown default:
            return ("", "the body could not be read")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is JSONValue.Type: "a JSON value"
        default: "a \(type)".replacingOccurrences(of: "Dictionary<String, Any>", with: "JSON object")
        }
    }
}
