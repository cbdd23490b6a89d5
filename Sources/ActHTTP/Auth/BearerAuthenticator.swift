import ActPlaybook
import Hummingbird
public import Logging

/// What a token may do. `admin` implies `operate`, which implies `read`.
public enum Scope: String, Hashable, Sendable, CaseIterable, Comparable {
    /// Every GET, `/metrics` and `/openapi.yaml` included.
    case read
    /// Events, run commands, task results, signals and callbacks.
    case operate
    /// Registering playbooks.
    case admin

    private var rank: Int {
        switch self {
        case .read: 0
        case .operate: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rank < rhs.rank }
}

/// The caller a bearer token stands for.
public struct Principal: Hashable, Sendable {
    /// The token's name (`ops`), used as the actor of commands that name none; never the secret.
    public var name: String
    public var scopes: Set<Scope>

    public init(name: String, scopes: Set<Scope>) {
        self.name = name
        self.scopes = scopes
    }

    /// Whether the token grants `scope` directly or through a broader one.
    public func grants(_ scope: Scope) -> Bool { scopes.contains { $0 >= scope } }
}

/// The configured API tokens, read from `name:secret:scope+scope` entries (`ServiceConfiguration.http.tokens`).
public struct TokenTable: Sendable {
    struct Entry: Sendable {
        var principal: Principal
        var secret: [UInt8]
    }

    var entries: [Entry]

    /// Reads the entries; malformed ones (which configuration validation refuses anyway) are skipped and
    /// logged by name only.
    public init(_ specifications: [String], logger: Logger) {
        var entries: [Entry] = []
        for specification in specifications {
            let parts = specification.split(separator: ":", omittingEmptySubsequences: false)
            let scopes = parts.count == 3 ? parts[2].split(separator: "+").map { Scope(rawValue: String($0)) } : []
            guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !scopes.isEmpty, !scopes.contains(nil) else {
                logger.warning("ignoring a malformed API token entry; write name:secret:scope+scope",
                    metadata: ["token.name": "\(parts.first.map(String.init) ?? "")"])
                continue
            }
            entries.append(Entry(principal: Principal(name: String(parts[0]), scopes: Set(scopes.compactMap { $0 })),
                secret: Array(parts[1].utf8)))
        }
        self.entries = entries
    }

    /// The principal whose secret is `presented`.
    ///
    /// Every configured secret is compared, each in time that depends only on the lengths, so the answer
    /// time says nothing about how much of a secret matched or which token did.
    func principal(presenting presented: [UInt8]) -> Principal? {
        var found: Principal?
        for entry in entries where Self.constantTimeEquals(entry.secret, presented) {
            found = found ?? entry.principal
        }
        return found
    }

    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count) | (lhs.count == rhs.count ? 0 : 1)
        let count = max(lhs.count, rhs.count)
        for index in 0..<count {
            let a = index < lhs.count ? lhs[index] : 0
            let b = index < rhs.count ? rhs[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }
}

/// Accepts `Authorization: Bearer <secret>` and records the ``Principal`` in the context; anything else is
/// a 401 problem with `WWW-Authenticate: Bearer`. The token is never logged.
struct BearerAuthenticator: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: TokenTable

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let header = request.headers[.authorization] else {
            throw APIProblem(.unauthorized, slug: "unauthorized", title: "Unauthorized",
                detail: "send Authorization: Bearer <token>", headers: [.wwwAuthenticate: "Bearer realm=\"hms-act\""])
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix,
            let principal = tokens.principal(presenting: Array(header.dropFirst(prefix.count).utf8))
        else {
            throw APIProblem(.unauthorized, slug: "unauthorized", title: "Unauthorized",
                detail: "the bearer token is not valid",
                headers: [.wwwAuthenticate: "Bearer realm=\"hms-act\", error=\"invalid_token\""])
        }
        var context = context
        context.principal = principal
        context.logger[metadataKey: "http.principal"] = "\(principal.name)"
        return try await next(request, context)
    }
}

/// Lets a request through only when its principal grants `scope`: 403 problem otherwise.
struct RequireScope: RouterMiddleware {
    typealias Context = APIRequestContext
    let scope: Scope

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let principal = context.principal, principal.grants(scope) else {
            throw APIProblem(.forbidden, slug: "insufficient-scope", title: "Forbidden",
                detail: "this route needs a token with the \(scope.rawValue) scope",
                extensions: ["required_scope": .string(scope.rawValue)],
                headers: [.wwwAuthenticate: "Bearer realm=\"hms-act\", error=\"insufficient_scope\", scope=\"\(scope.rawValue)\""])
        }
        return try await next(request, context)
    }
}
