import ActPlaybook
import Foundation

/// A small client of the hms-act HTTP API (`docs/http-api.md`), over ``HTTPExchange`` (plain HTTP/1.1).
///
/// Every call sends `Authorization: Bearer <token>` when a token is set, and turns the server's
/// `application/problem+json` answers into ``APIError/problem(_:)``. A server that cannot be reached
/// becomes ``APIError/unreachable(url:reason:)``, whose text says how to start one.
struct APIClient: Sendable {
    /// The API root, e.g. `http://127.0.0.1:8100`.
    var baseURL: URL
    /// A bearer secret (`HMS_API_TOKEN`), or nil when the server runs without tokens.
    var token: String?

    /// One HTTP answer.
    struct Response: Sendable {
        var status: Int
        var body: Data

        /// The body as a JSON value (`null` when empty).
        func json() throws -> JSONValue {
            guard !body.isEmpty else { return .null }
            do {
                return try JSONValue(parsing: body)
            } catch {
                throw APIError.badResponse("the server answered HTTP \(status) with a body that is not JSON")
            }
        }

        /// The body decoded as `T`.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: body)
            } catch {
                throw APIError.badResponse("cannot read the server's answer as \(T.self): \(error)")
            }
        }
    }

    // MARK: Calls

    /// `GET path?query`.
    func get(_ path: String, query: [(String, String?)] = []) async throws -> Response {
        try await send("GET", path, query: query, body: nil, contentType: nil)
    }

    /// `POST path` with a JSON body.
    func post(_ path: String, json: JSONValue?, headers: [String: String] = [:]) async throws -> Response {
        let body: Data?
        if let json {
            do {
                body = try JSONEncoder().encode(json)
            } catch {
                throw APIError.badRequest("cannot encode the request body: \(error)")
            }
        } else {
            body = nil
        }
        return try await send("POST", path, query: [], body: body, contentType: json == nil ? nil : "application/json",
            headers: headers)
    }

    /// `POST path` with a raw body of the given content type.
    func post(_ path: String, body: Data, contentType: String) async throws -> Response {
        try await send("POST", path, query: [], body: body, contentType: contentType)
    }

    /// Sends a request and returns a 2xx answer; anything else throws.
    ///
    /// - Throws: ``APIError/problem(_:)`` for 4xx/5xx, ``APIError/unreachable(url:reason:)`` when no
    ///   connection could be made, ``APIError/badResponse(_:)`` otherwise.
    func send(
        _ method: String, _ path: String, query: [(String, String?)], body: Data?, contentType: String?,
        headers: [String: String] = [:]
    ) async throws -> Response {
        let url = try url(path, query: query)
        guard url.scheme == "http", let host = url.host,
            let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        else {
            throw APIError.badRequest(
                "\(baseURL.absoluteString) is not an http:// URL; the CLI speaks plain HTTP: reach a remote API with "
                    + "`kubectl port-forward svc/hms-act 8100:8100` and HMS_API_URL=http://127.0.0.1:8100, or run it in the pod")
        }
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        let port = url.port ?? 80
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        head += "Accept: application/json, application/problem+json\r\nUser-Agent: hms-act-cli\r\n"
        if let token, !token.isEmpty { head += "Authorization: Bearer \(token)\r\n" }
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body?.count ?? 0)\r\n\r\n"
        let answer: HTTPExchange.Answer
        do {
            answer = try await HTTPExchange.perform(host: host, port: port, request: Array(head.utf8) + Array(body ?? Data()))
        } catch {
            switch error {
            case .unreachable(let reason): throw APIError.unreachable(url: baseURL.absoluteString, reason: reason)
            case .timedOut: throw APIError.unreachable(url: baseURL.absoluteString, reason: "no answer within 30 s")
            case .malformed(let reason): throw APIError.badResponse("the answer from \(url) is not HTTP: \(reason)")
            }
        }
        if Task.isCancelled { throw APIError.cancelled }
        guard (200..<300).contains(answer.status) else {
            throw APIError.problem(Problem(status: answer.status, body: answer.body, url: url))
        }
        return Response(status: answer.status, body: answer.body)
    }

    /// The full URL of `path` (already percent-encoded where needed) with `query` (nil values left out).
    func url(_ path: String, query: [(String, String?)]) throws -> URL {
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += path
        let items = query.compactMap { name, value in value.map { (name, $0) } }
        if !items.isEmpty {
            text += "?" + items.map { "\(Self.encodeComponent($0))=\(Self.encodeComponent($1))" }.joined(separator: "&")
        }
        guard let url = URL(string: text) else { throw APIError.badRequest("'\(text)' is not a valid URL") }
        return url
    }

    /// Percent-encodes one path segment or query value: task ids contain `/`, which must become `%2F`.
    static func encodeComponent(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

}

/// An `application/problem+json` answer (RFC 9457), as the API sends for every error.
struct Problem: Sendable {
    var status: Int
    var type: String?
    var title: String
    var detail: String?
    /// `diagnostics` of a refused playbook.
    var diagnostics: [JSONValue]
    /// `errors` of a request with bad fields.
    var errors: [JSONValue]

    init(status: Int, body: Data, url: URL) {
        self.status = status
        let json = (try? JSONValue(parsing: body)) ?? .null
        self.type = json["type"]?.stringValue
        self.title = json["title"]?.stringValue ?? Self.reason(status)
        var detail = json["detail"]?.stringValue
        if detail == nil, json == .null, !body.isEmpty {
            detail = String(decoding: body.prefix(500), as: UTF8.self)
        }
        if detail == nil, status == 404, json == .null {
            detail = "\(url.path) does not exist on this server; is --api pointing at hms-act?"
        }
        self.detail = detail
        if case .array(let items)? = json["diagnostics"] { diagnostics = items } else { diagnostics = [] }
        if case .array(let items)? = json["errors"] { errors = items } else { errors = [] }
    }

    /// The reason phrase of a status without a problem body.
    static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 409: "Conflict"
        case 422: "Unprocessable Content"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "HTTP \(status)"
        }
    }
}

/// What can go wrong talking to the API; the descriptions are what the CLI prints after `error: `.
enum APIError: Error, CustomStringConvertible {
    /// The server answered with a problem.
    case problem(Problem)
    /// No connection could be made.
    case unreachable(url: String, reason: String)
    /// The server answered something the client cannot read.
    case badResponse(String)
    /// The request could not be built (bad option values).
    case badRequest(String)
    case cancelled

    /// The HTTP status of a problem answer; nil for the other cases.
    var status: Int? {
        if case .problem(let problem) = self { return problem.status }
        return nil
    }

    var description: String {
        switch self {
        case .problem(let problem):
            var text = problem.title
            if let detail = problem.detail, !detail.isEmpty { text += ": " + detail }
            switch problem.status {
            case 401:
                text += "\n  hint: pass a token with --token or HMS_API_TOKEN (one of the server's HMS_API_TOKENS secrets)"
            case 403:
                text += "\n  hint: this call needs a token with more scope (operate for changes, admin for playbooks)"
            default:
                break
            }
            for diagnostic in problem.diagnostics { text += "\n" + Self.describe(diagnostic: diagnostic) }
            for error in problem.errors { text += "\n  " + Self.describe(fieldError: error) }
            return text
        case .unreachable(let url, let reason):
            return """
                cannot reach the hms-act API at \(url) (\(reason))
                  Start the server with `hms-act serve` (or the whole local stack with `scripts/demo`),
                  or point the CLI at a running one with --api URL or HMS_API_URL.
                """
        case .badResponse(let text), .badRequest(let text):
            return text
        case .cancelled:
            return "cancelled"
        }
    }

    /// `file:line:column: error: message (code)` plus `fix:` on the next line, as `playbook validate` prints.
    static func describe(diagnostic: JSONValue) -> String {
        var location: [String] = []
        if let file = diagnostic["file"]?.stringValue { location.append(file) }
        if let line = diagnostic["line"]?.numberValue { location.append(line.keyText) }
        if let column = diagnostic["column"]?.numberValue { location.append(column.keyText) }
        var text = location.isEmpty ? "" : location.joined(separator: ":") + ": "
        text += (diagnostic["severity"]?.stringValue ?? "error") + ": "
        text += diagnostic["message"]?.stringValue ?? "\(diagnostic)"
        if let code = diagnostic["code"]?.stringValue { text += " [\(code)]" }
        if let fix = diagnostic["fix"]?.stringValue, !fix.isEmpty { text += "\n    fix: " + fix }
        return text
    }

    static func describe(fieldError: JSONValue) -> String {
        if let text = fieldError.stringValue { return text }
        let field = fieldError["field"]?.stringValue ?? fieldError["pointer"]?.stringValue
        let message = fieldError["message"]?.stringValue ?? fieldError["detail"]?.stringValue ?? "\(fieldError)"
        return field.map { "\($0): \(message)" } ?? message
    }
}
