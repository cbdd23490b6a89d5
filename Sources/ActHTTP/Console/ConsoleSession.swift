import ActService
import ActStore
internal import Foundation
import Hummingbird
import Logging

/// The console session of a request: the cookie secret's digest (to sign out) and the CSRF token its forms
/// must carry.
struct ConsoleSessionState: Sendable {
    var digest: [UInt8]
    var csrfToken: String
}

/// Sessions of the console (docs/console.md, "Signing in").
///
/// Signing in presents an API token once; the browser then holds a random 256-bit secret in the
/// `hms_console` cookie (`HttpOnly`, `SameSite=Strict`, `Secure` unless the request came over plain HTTP to
/// a loopback address), and PostgreSQL holds its SHA-256 with the token's digest, so any replica answers
/// any request and signing out ends the session everywhere. A session acts with its token's scopes and
/// agents, looked up on every request: removing the token from `http.tokens` ends its sessions.
enum ConsoleSessions {
    static let cookieName = "hms_console"
    /// A working day.
    static let lifetime: Duration = .seconds(8 * 3_600)

    /// 32 random bytes as lowercase hex.
    static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexString
    }

    /// Whether the request reached us over HTTPS (a TLS-terminating ingress says so in `X-Forwarded-Proto`).
    static func isSecureTransport(_ request: Request) -> Bool {
        request.headers[.init("X-Forwarded-Proto")!]?.lowercased() == "https" || request.head.scheme == "https"
    }

    /// Whether the request's `Host` is this machine: the one place a session cookie may travel without TLS.
    static func isLoopbackHost(_ request: Request) -> Bool {
        guard let authority = request.head.authority else { return false }
        let host: Substring
        if authority.hasPrefix("[") {
            host = authority.dropFirst().prefix { $0 != "]" }
        } else {
            host = authority.prefix { $0 != ":" }
        }
        return ["127.0.0.1", "localhost", "::1"].contains(host.lowercased())
    }

    /// The session cookie for `secret` (empty with `maxAge` 0 to clear it).
    static func cookie(_ secret: String, secure: Bool, maxAge: Int) -> Cookie {
        Cookie(name: cookieName, value: secret, maxAge: maxAge, path: "/ui", secure: secure, httpOnly: true,
            sameSite: .strict)
    }

    /// Refuses a state-changing request that comes from another site: `Sec-Fetch-Site` other than
    /// `same-origin`/`none`, or an `Origin` that is not this server's. Browsers send at least one of them
    /// on every form post; SameSite=Strict already keeps the session cookie off such requests, and the
    /// CSRF token is checked as well (``ConsoleSessionMiddleware``).
    static func isCrossSite(_ request: Request) -> Bool {
        if let site = request.headers[.init("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            return true
        }
        let origin: String
        switch request.headers[.init("Origin")!] {
        case nil: return false
        case "null": return true
        case let value?: origin = value
        }
        // scheme://host[:port]: the part after "//" must be the authority the browser addressed: the Host it
        // sent, or the one a proxy that rewrites Host passes on in X-Forwarded-Host.
        guard let host = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first?.lowercased()
        else { return true }
        let addressed = [request.head.authority, request.headers[.init("X-Forwarded-Host")!]].compactMap { $0?.lowercased() }
        return !addressed.contains(host)
    }
}

/// Finds the console session of a `/ui` request and acts as its token's principal; pages without a session
/// redirect to the sign-in page, and every `POST` must carry the session's CSRF token (`_csrf`) and come
/// from this site, else 403 and nothing changes.
struct ConsoleSessionMiddleware<Plane: ControlPlane>: RouterMiddleware {
    typealias Context = APIRequestContext
    let controlPlane: Plane
    let tokens: TokenTable
    let anonymous: Principal?
    let pages: ConsolePages

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let secret = request.cookies[ConsoleSessions.cookieName]?.value, !secret.isEmpty else {
            return signIn(request)
        }
        let digest = APITokenEntry.digest(ofSecret: Array(secret.utf8))
        guard let session = try await controlPlane.consoleSession(digest: digest),
            let principal = session.tokenDigest.isEmpty ? anonymous : tokens.principal(digest: session.tokenDigest)
        else {
            return signIn(request)
        }
        var context = context
        context.principal = principal
        context.consoleSession = ConsoleSessionState(digest: digest, csrfToken: session.csrfToken)
        context.logger[metadataKey: "http.principal"] = "\(principal.name)"
        if request.method == .post {
            if ConsoleSessions.isCrossSite(request) {
                return try pages.error(.forbidden, "Refused: this form was sent from another site. Open the console "
                    + "and use its own forms.", context: context)
            }
            let form = try await ConsoleForm(request, context: context)
            guard APITokenEntry.constantTimeEquals(Array((form["_csrf"] ?? "").utf8), Array(session.csrfToken.utf8))
            else {
                return try pages.error(.forbidden, "Refused: the form's security token is missing or stale. Reload "
                    + "the page and try again.", context: context)
            }
            context.consoleForm = form
        }
        do {
            return try await next(request, context)
        } catch {
            // A page answers in HTML: the problem's detail says what is wrong.
            let problem = ProblemMiddleware<Context>().problem(for: error, request: request, logger: context.logger)
            return try pages.error(problem.status, problem.detail.isEmpty ? problem.title : problem.detail, context: context)
        }
    }

    private func signIn(_ request: Request) -> Response {
        let target = request.method == .get ? request.uri.description : "/ui"
        let query = target == "/ui" || target == "/ui/" ? "" : "?next=" + ConsoleForm.percentEncode(target)
        return Response(status: .seeOther, headers: [.location: "/ui/login" + query])
    }
}

/// An `application/x-www-form-urlencoded` body, by field (the last value of a repeated field).
struct ConsoleForm: Sendable {
    var fields: [String: String]

    init(_ request: Request, context: APIRequestContext) async throws {
        let bytes = try await APIRequest.body(of: request, context: context)
        self.init(encoded: String(decoding: bytes, as: UTF8.self))
    }

    init(encoded: String) {
        var fields: [String: String] = [:]
        for pair in encoded.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first.flatMap({ Self.decode($0) }) else { continue }
            fields[name] = parts.count > 1 ? Self.decode(parts[1]) ?? "" : ""
        }
        self.fields = fields
    }

    subscript(_ name: String) -> String? { fields[name] }

    /// A field's text with surrounding whitespace removed; `nil` when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    static func decode(_ text: Substring) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// `text` as one path segment: everything but letters, digits and `-._~` percent-encoded (task ids hold `/`).
    static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    /// ASCII letters, digits and `-._~`: what a URL carries as it is (headers such as `Location` are ASCII).
    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// `text` for a query value or a path: `/` stays.
    static func percentEncode(_ text: String) -> String {
        var allowed = unreserved
        allowed.insert("/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
