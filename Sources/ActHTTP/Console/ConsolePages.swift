internal import Foundation
import Hummingbird
import Logging
import Mustache

/// The console's templates (`Resources/console/*.mustache`) and static files, and the HTML responses made
/// from them: every page with a restrictive Content-Security-Policy (its own scripts and styles only), no
/// caching, and no framing.
struct ConsolePages: Sendable {
    let library: MustacheLibrary
    let stylesheet: [UInt8]
    let script: [UInt8]

    /// Loads the templates from the module's resource bundle; `nil` (logged) when they are missing from the
    /// installation (then `/ui` answers 500 with that reason).
    static func load(logger: Logger) -> ConsolePages? {
        guard let directory = Bundle.module.url(forResource: "console", withExtension: nil, subdirectory: "Resources") else {
            logger.error("the console's templates are missing from the ActHTTP resource bundle; /ui answers 500")
            return nil
        }
        do {
            var library = MustacheLibrary()
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            for name in names.sorted() where name.hasSuffix(".mustache") {
                let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
                try library.register(text, named: String(name.dropLast(".mustache".count)))
            }
            let stylesheet = try Data(contentsOf: directory.appendingPathComponent("console.css"))
            let script = try Data(contentsOf: directory.appendingPathComponent("console.js"))
            return ConsolePages(library: library, stylesheet: Array(stylesheet), script: Array(script))
        } catch {
            logger.error("the console's templates could not be read; /ui answers 500", metadata: ["error": "\(error)"])
            return nil
        }
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        .init("Referrer-Policy")!: "same-origin",
        .init("X-Frame-Options")!: "DENY",
        .cacheControl: "no-store",
    ]

    /// A page: `template` rendered with `values` plus what every page shows (who is signed in, what they may
    /// do, the CSRF token of their forms, the active section).
    func page(_ template: String, _ values: [String: Any], context: APIRequestContext, section: String? = nil,
        status: HTTPResponse.Status = .ok) throws -> Response
    {
        var values = values
        if let principal = context.principal {
            values["user"] = principal.name
            values["canOperate"] = principal.grants(.operate)
            values["scopes"] = principal.scopes.map(\.rawValue).sorted().joined(separator: ", ")
        }
        values["csrf"] = context.consoleSession?.csrfToken ?? ""
        if let section { values["section_" + section] = true }
        return html(try render(template, values), status: status)
    }

    func render(_ template: String, _ values: [String: Any]) throws -> String {
        guard let text = library.render(values, withTemplate: template) else {
            throw APIProblem(.internalServerError, slug: "internal", title: "Internal server error",
                detail: "the console has no template \(template)")
        }
        return text
    }

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// An error page with a sentence saying what is wrong and what to do.
    func error(_ status: HTTPResponse.Status, _ message: String, context: APIRequestContext) throws -> Response {
        try page("error", ["title": "\(status.code) \(status.reasonPhrase)", "message": message], context: context,
            status: status)
    }
}
