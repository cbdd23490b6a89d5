import ActPlaybook
import ActService
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
    /// The agents whose tasks it may claim, heartbeat and answer (`:agents=` in its entry); `nil`: any.
    public var agents: Set<String>?

    public init(name: String, scopes: Set<Scope>, agents: Set<String>? = nil) {
        self.name = name
        self.scopes = scopes
        self.agents = agents
    }

    /// Whether the token grants `scope` directly or through a broader one.
    public func grants(_ scope: Scope) -> Bool { scopes.contains { $0 >= scope } }

    /// Whether it may claim, heartbeat or answer the tasks of `agent` (an agent id, e.g. `ai.fraud-labeler`).
    public func mayActAs(agent: String) -> Bool { agents?.contains(agent) ?? true }
}

/// The configured API tokens (`ServiceConfiguration.http.tokens`, read by ``APITokenEntry``): only the
/// SHA-256 digest of each secret is held, whether the entry gave the secret or its digest.
public struct TokenTable: Sendable {
    struct Entry: Sendable {
        var principal: Principal
        var digest: [UInt8]
    }

    var entries: [Entry]

    /// Reads the entries; malformed ones (which configuration validation refuses anyway) are skipped and
    /// logged by name only.
    public init(_ specifications: [String], logger: Logger) {
        var entries: [Entry] = []
        for specification in specifications {
            do {
                let entry = try APITokenEntry(parsing: specification)
                let scopes = Set(entry.scopes.compactMap(Scope.init(rawValue:)))
                entries.append(Entry(principal: Principal(name: entry.name, scopes: scopes, agents: entry.agents.map(Set.init)),
                    digest: entry.digest))
            } catch {
                logger.warning("ignoring a malformed API token entry", metadata: ["problem": "\(error.description)"])
            }
        }
        self.entries = entries
    }

    /// The principal whose secret is `presented`.
    ///
    /// The presented token is hashed once and its digest compared with every configured digest, each
    /// comparison over all 32 bytes, so the answer time says nothing about how much of a secret matched or
    /// which token did.
    func principal(presenting presented: [UInt8]) -> Principal? {
        let digest = APITokenEntry.digest(ofSecret: presented)
        var found: Principal?
        for entry in entries where APITokenEntry.constantTimeEquals(entry.digest, digest) {
            found = found ?? entry.principal
        }
        return found
    }

    /// The principal whose secret is `presented`, with the digest of that secret (the exact entry, for a
    /// console session to name).
    func entry(presenting presented: [UInt8]) -> (principal: Principal, digest: [UInt8])? {
        let digest = APITokenEntry.digest(ofSecret: presented)
        return principal(presenting: presented).map { ($0, digest) }
    }

    /// The principal of the entry whose secret has SHA-256 `digest`; `nil` once the entry is removed from the
    /// configuration (which ends the console sessions signed in with it).
    func principal(digest: [UInt8]) -> Principal? {
        var found: Principal?
        for entry in entries where APITokenEntry.constantTimeEquals(entry.digest, digest) {
            found = found ?? entry.principal
        }
        return found
    }
}

/// Accepts `Authorization: Bearer <secret>` and records the ``Principal`` in the context; anything else is
/// a 401 problem with `WWW-Authenticate: Bearer`. The token is never logged. With `anonymous` (the demo's
/// loopback mode), a request without an `Authorization` header acts as that principal; a wrong token is
/// still refused.
struct BearerAuthenticator: RouterMiddleware {
    typealias Context = APIRequestContext
    let tokens: TokenTable
    var anonymous: Principal? = nil

    func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response)
        async throws -> Response
    {
        guard let header = request.headers[.authorization] else {
            if let anonymous {
                var context = context
                context.principal = anonymous
                context.logger[metadataKey: "http.principal"] = "\(anonymous.name)"
                return try await next(request, context)
            }
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
