public import Hummingbird

/// The request context of the API: Hummingbird's core storage, the caller the bearer token identified,
/// and the body limit.
public struct APIRequestContext: RequestContext {
    /// The largest request body read, in bytes (1 MiB, the same limit as events on the broker): larger
    /// bodies get a 413 problem.
    public static let maximumBodySize = 1 << 20

    public var coreContext: CoreRequestContextStorage
    /// Who called, once ``BearerAuthenticator`` accepted the token; `nil` on the open routes.
    public var principal: Principal?
    /// The console session of the request (`/ui`), once ``ConsoleSessionMiddleware`` found one.
    var consoleSession: ConsoleSessionState?
    /// The form a console `POST` sent, read (and its CSRF token checked) by ``ConsoleSessionMiddleware``.
    var consoleForm: ConsoleForm?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.consoleSession = nil
        self.consoleForm = nil
    }

    public var maxUploadSize: Int { Self.maximumBodySize }
}
