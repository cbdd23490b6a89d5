import ActService
import ArgumentParser

/// `hms-act token hash NAME --scopes read+operate [--generate]`: writes an `http.tokens` entry that holds
/// the SHA-256 of the secret instead of the secret.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Write API token entries for http.tokens / HMS_API_TOKENS.",
        subcommands: [Hash.self]
    )

    /// `hms-act token hash`.
    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print name:sha256:HEX:scopes for a secret read from standard input (or a new one).",
            discussion: """
                The secret is read from standard input (one line), never from the command line, where other
                users could see it in the process list:
                  printf %s "$SECRET" | hms-act token hash ops --scopes read+operate
                With --generate a new random secret (256 bits, hex) is made and printed first, on its own
                line, to hand to the client; the second line is the entry for the configuration.
                """
        )

        @Argument(help: "The token's name: the principal, recorded as the actor of its commands.")
        var name: String
        @Option(help: "Scopes joined with +: read, operate, admin.")
        var scopes: String = "read"
        @Option(help: "Bind the token to these agents (ids joined with +): it may claim and answer only their tasks.")
        var agents: String?
        @Flag(help: "Make a new random secret instead of reading one.")
        var generate = false

        func validate() throws {
            guard !name.isEmpty, !name.contains(":"), !name.contains(",") else {
                throw ValidationError("the name must be non-empty, without `:` or `,`")
            }
            for scope in scopes.split(separator: "+", omittingEmptySubsequences: false)
            where !APITokenEntry.scopeNames.contains(String(scope)) {
                throw ValidationError("unknown scope `\(scope)`; use read, operate or admin, joined with +")
            }
            if let agents, agents.isEmpty || agents.split(separator: "+", omittingEmptySubsequences: false)
                .contains(where: { $0.isEmpty || $0.contains(":") || $0.contains(",") }) {
                throw ValidationError("--agents takes agent ids joined with +, e.g. ai.fraud-labeler+ai.classifier")
            }
        }

        func run() throws {
            let secret: String
            if generate {
                var generator = SystemRandomNumberGenerator()
                secret = (0..<32).map { _ in
                    let text = String(UInt8.random(in: .min ... .max, using: &generator), radix: 16)
                    return text.count == 1 ? "0" + text : text
                }.joined()
                print(secret)
            } else {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                    throw ValidationError("no secret on standard input; pipe one in, or use --generate")
                }
                guard !line.contains(":"), !line.contains(",") else {
                    throw ValidationError("a secret must not contain `:` or `,` (they separate entries and fields)")
                }
                secret = line
            }
            let scopeList = scopes.split(separator: "+").map(String.init)
            print(APITokenEntry.hashedSpecification(name: name, secret: Array(secret.utf8), scopes: scopeList,
                agents: agents?.split(separator: "+").map(String.init)))
        }
    }
}
