public import ActPlaybook
internal import Foundation
public import Hummingbird

/// An RFC 9457 problem: every error the API answers with, as `application/problem+json`.
///
/// ```json
/// {"type": "https://hms-act.dev/problems/invalid-playbook", "title": "Invalid playbook", "status": 422,
///  "detail": "the playbook has 2 errors", "instance": "/v1/playbooks", "diagnostics": [ … ]}
/// ```
///
/// The `type` is a stable slug under ``APIProblem/typeBase``; clients branch on it, not on the text.
public struct APIProblem: HTTPResponseError, Sendable, CustomStringConvertible {
    /// Where problem types live; the slug is appended.
    public static let typeBase = "https://hms-act.dev/problems/"

    public var status: HTTPResponse.Status
    /// The kebab-case slug of the problem type (`run-not-found`).
    public var slug: String
    public var title: String
    public var detail: String
    /// The request path, filled in by the problem middleware when absent.
    public var instance: String?
    /// Members beyond the standard ones (`diagnostics`, `errors`).
    public var extensions: [String: JSONValue]
    /// Extra response headers (`WWW-Authenticate`).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, slug: String, title: String, detail: String,
        extensions: [String: JSONValue] = [:], headers: HTTPFields = [:])
    {
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.instance = nil
        self.extensions = extensions
        self.headers = headers
    }

    /// The full problem type URI.
    public var type: String { Self.typeBase + slug }

    public var description: String { "\(status.code) \(slug): \(detail)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        let body = try APIEncoding.encoder.encode(Body(problem: self))
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// The problem as JSON, with the extensions beside the standard members.
    private struct Body: Encodable {
        var problem: APIProblem

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { self.stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for (key, value) in problem.extensions where !["type", "title", "status", "detail", "instance"].contains(key) {
                try c.encode(value, forKey: Key(key))
            }
            try c.encode(problem.type, forKey: Key("type"))
            try c.encode(problem.title, forKey: Key("title"))
            try c.encode(Int(problem.status.code), forKey: Key("status"))
            try c.encode(problem.detail, forKey: Key("detail"))
            try c.encodeIfPresent(problem.instance, forKey: Key("instance"))
        }
    }
}

extension APIProblem {
    /// 400: a query parameter or body field is wrong.
    static func badRequest(_ detail: String, field: String? = nil) -> APIProblem {
        var extensions: [String: JSONValue] = [:]
        if let field { extensions["errors"] = [["field": .string(field), "message": .string(detail)]] }
        return APIProblem(.badRequest, slug: "invalid-request", title: "Invalid request", detail: detail,
            extensions: extensions)
    }

    /// 404: the named resource does not exist.
    static func notFound(_ what: String, slug: String) -> APIProblem {
        APIProblem(.notFound, slug: slug, title: "Not found", detail: what)
    }

    /// 422: a playbook was refused, with every diagnostic.
    static func invalidPlaybook(_ error: PlaybookLoadError) -> APIProblem {
        let errors = error.errors.count
        return APIProblem(.unprocessableContent, slug: "invalid-playbook", title: "Invalid playbook",
            detail: "the playbook has \(errors) error\(errors == 1 ? "" : "s"); see diagnostics",
            extensions: ["diagnostics": .array(error.diagnostics.map { JSONValue(API.Diagnostic($0)) })])
    }

    /// 503: PostgreSQL or RabbitMQ cannot be reached (or times out) right now; the client should retry.
    static var unavailable: APIProblem {
        var fields = HTTPFields()
        fields[.retryAfter] = "5"
        return APIProblem(.serviceUnavailable, slug: "unavailable", title: "Service unavailable",
            detail: "a server hms-act depends on (PostgreSQL or RabbitMQ) is unreachable or overloaded; nothing was "
                + "changed. Retry after the number of seconds in Retry-After; /readyz says which server is down",
            headers: fields)
    }

    /// 500: a submission came back without a result for its input; nothing says it was applied.
    static var notApplied: APIProblem {
        APIProblem(.internalServerError, slug: "internal", title: "Internal server error",
            detail: "the input was not applied; try again")
    }

    /// 413: the body is above ``APIRequestContext/maximumBodySize``.
    static var bodyTooLarge: APIProblem {
        APIProblem(.contentTooLarge, slug: "body-too-large", title: "Body too large",
            detail: "request bodies are limited to \(APIRequestContext.maximumBodySize) bytes; "
                + "send a reference to large documents instead of the documents")
    }
}

extension JSONValue {
    /// A diagnostic as a JSON object, with explicit `null`s like the other API shapes.
    init(_ diagnostic: API.Diagnostic) {
        func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
        func optional(_ number: Int?) -> JSONValue { number.map { .int($0) } ?? .null }
        self = [
            "severity": .string(diagnostic.severity), "code": .string(diagnostic.code),
            "message": .string(diagnostic.message), "fix": optional(diagnostic.fix), "line": optional(diagnostic.line),
            "column": optional(diagnostic.column), "file": optional(diagnostic.file),
        ]
    }
}

/// The one JSON encoder and decoder configuration of the API.
enum APIEncoding {
    /// Sorted keys (stable output) and unescaped slashes (task ids contain `/`).
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
