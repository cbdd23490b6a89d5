internal import Foundation
public import ActStore
public import ActEngine
public import ActPlaybook

/// Every setting of `hms-act serve`, with its default. `ActCLI` decodes it once from `config/hms-act.yaml`
/// and the environment (see ``ServiceConfiguration/settings`` for the variable of each key); nothing
/// below the CLI reads the environment.
public struct ServiceConfiguration: Sendable, Hashable {
    /// `production` (the default) or `development`. Development mode lets `serve` start with what is only
    /// fit for a laptop or a test stack (placeholder keys, plaintext default credentials); production
    /// refuses them at start with the setting to fix.
    public var mode = "production"
    public var amqp = AMQP()
    public var postgres = Postgres()
    public var http = HTTP()
    public var engine = Engine()
    public var audit = Audit()
    public var calls = Calls()
    public var triggers = Triggers()
    public var retention = Retention()
    public var paths = Paths()
    /// Span export (``TraceSettings``, from the standard `OTEL_*` variables, which `serve` reads); `nil`: off.
    public var tracing: TraceSettings?

    public init() {}

    /// Whether `mode` is `development`.
    public var isDevelopment: Bool { mode == "development" }

    public struct AMQP: Sendable, Hashable {
        public var url = "amqp://guest:guest@127.0.0.1:5672/%2f"
        /// Refuse to start unless ``url`` is `amqps://` with the broker's certificate and host name verified.
        public var requireTLS = false
        /// Files for `amqps://`; each overrides the URL's `cacertfile`, `certfile`, `keyfile`.
        public var tls = TLS()
        public var heartbeatSeconds = 10
        public var prefetch = 500
        /// `quorum` for production clusters, `classic` for a single local node.
        public var queueType = "quorum"
        public var deliveryLimit = 5
        /// The largest message the broker accepts (RabbitMQ's `max_message_size`; 16 MiB is RabbitMQ 4's
        /// default). The relay does not try to publish a larger outbox row: it defers it with an
        /// `unpublishable_message` incident instead of letting the broker close the channel. 0: no check.
        public var maxMessageBytes = 16 << 20
        /// Who each RabbitMQ user may act as on the results queue: `user=pattern;pattern` (``BrokerIdentities``).
        /// Empty: the actor a message names is taken on trust.
        public var actors: [String] = []
        public var exchanges = Exchanges()
        public var queues = Queues()
        public init() {}

        public struct TLS: Sendable, Hashable {
            /// PEM file of the CA certificates that may sign the broker's certificate ("": the URL's, if any).
            public var caFile = ""
            /// Client certificate (PEM) for brokers that ask for one; needs ``keyFile``.
            public var certFile = ""
            /// The client certificate's private key (PEM).
            public var keyFile = ""
            public init() {}
        }

        public struct Exchanges: Sendable, Hashable {
            public var events = "hms.events"
            public var tasks = "hms.tasks"
            public var results = "hms.results"
            public var governance = "hms.governance"
            public var dead = "hms.dead"
            public init() {}
        }

        public struct Queues: Sendable, Hashable {
            public var triggers = "hms-act.triggers"
            public var results = "hms-act.results"
            public var dead = "hms-act.dead"
            public init() {}
        }
    }

    public struct Postgres: Sendable, Hashable {
        public var url = "postgresql://hms@127.0.0.1:5432/hms_act"
        /// Refuse to start unless ``url`` says `sslmode=verify-full` (certificate and host name verified).
        public var requireTLS = false
        /// libpq `sslrootcert`: PEM file of the CAs that may sign the server's certificate ("": the URL's).
        public var sslRootCert = ""
        /// libpq `sslcert`: client certificate for servers that ask for one ("": the URL's).
        public var sslCert = ""
        /// libpq `sslkey`: the client certificate's private key ("": the URL's).
        public var sslKey = ""
        public var poolSize = 6
        /// The schema holding hms-act's tables; created by the migrations when missing.
        public var schema = "hms_act"
        /// Whether `serve` applies pending migrations at start; off when a separate owner role migrates
        /// (`hms-act migrate`) and the serving role may not (it then refuses to start on a schema that lacks one).
        public var migrateAtStart = true
        /// The role `serve` runs as, when it is not the role that migrates: `hms-act migrate` grants it its
        /// rights ("": serve and migrate are the same role).
        public var appRole = ""
        /// How long a caller waits for a free pooled connection before failing, in milliseconds.
        public var poolAcquireTimeoutMilliseconds = 10_000
        /// `statement_timeout` of every connection, in milliseconds (0: none, and no client deadline).
        public var statementTimeoutMilliseconds = 30_000
        /// `lock_timeout` of every connection, in milliseconds (0: none).
        public var lockTimeoutMilliseconds = 10_000
        /// `idle_in_transaction_session_timeout` of every connection, in milliseconds (0: none).
        public var idleInTransactionTimeoutMilliseconds = 60_000
        /// How much longer than the statement timeout the client waits for any answer before it closes the
        /// connection as hung, in milliseconds.
        public var answerGraceMilliseconds = 5_000
        /// libpq `connect_timeout`, in seconds (at least 2); overrides a `connect_timeout` in the URL.
        public var connectTimeoutSeconds = 10
        /// TCP keepalives: seconds of silence before the first probe (0: keepalives off).
        public var keepalivesIdleSeconds = 10
        /// TCP keepalives: seconds between unanswered probes.
        public var keepalivesIntervalSeconds = 5
        /// TCP keepalives: unanswered probes before the connection is dropped.
        public var keepalivesCount = 3
        /// `tcp_user_timeout`: how long sent data may stay unacknowledged, in milliseconds (0: system default).
        public var tcpUserTimeoutMilliseconds = 30_000
        public init() {}
    }

    public struct HTTP: Sendable, Hashable {
        public var host = "0.0.0.0"
        public var port = 8100
        /// Bearer tokens, as `name:sha256:HEX:scope1+scope2` or `name:secret:scope1+scope2` (scopes: read,
        /// operate, admin); see ``APITokenEntry``.
        public var tokens: [String] = []
        /// Requests without a token act as `anonymous` with the read and operate scopes: the local demo's
        /// mode, in which the chapters' code (which sends no token) runs. Only on a loopback `host`.
        public var anonymous = false
        public init() {}

        /// Whether `host` only listens on this machine.
        public var isLoopback: Bool {
            ["127.0.0.1", "::1", "localhost"].contains(host.lowercased()) || host.hasPrefix("127.")
        }
    }

    public struct Engine: Sendable, Hashable {
        /// SLA warning point as a fraction of the SLA when a step names none.
        public var slaWarningFraction = 0.8
        /// Deliveries applied per Postgres transaction.
        public var batchSize = 200
        /// Most bytes of message bodies applied per transaction (a batch stops short of `batchSize` when its
        /// bodies reach it; one larger message still forms a batch of its own).
        public var batchBytes = 4 << 20
        /// Most bytes of run state one transaction loads (past the first run): a batch whose runs carry more
        /// is applied in several transactions, so large payloads and outputs cannot exhaust memory.
        public var batchStateBytes = 8 << 20
        /// Most bytes of unacknowledged bodies a consumer may hold: the prefetch is lowered to this divided by
        /// the largest body a message may have (1 MiB), so a burst of large messages cannot exhaust memory.
        public var consumerBufferBytes = 128 << 20
        /// How long the batcher waits for more deliveries once it has one, in milliseconds. 0: none; under
        /// load, deliveries that arrive while a batch commits form the next batch anyway (measured with
        /// `hms-act-bench run`: 0 ms gave more throughput and less latency than 2 ms).
        public var batchWaitMilliseconds = 0
        /// Outbox rows published per confirm batch.
        public var outboxBatchSize = 500
        /// Most bytes of message bodies one relay claims at once (past the first row): a burst of large task
        /// messages cannot make a relay hold hundreds of megabytes.
        public var outboxBatchBytes = 16 << 20
        /// Outbox relays per replica, each publishing the messages of its share of the runs (so one run's
        /// messages keep their order), so one relay's wait for confirms does not hold up the others.
        public var outboxRelays = 2
        /// How often the timer scanner looks for due timers when no NOTIFY woke it, in milliseconds.
        public var timerPollMilliseconds = 250
        /// Inbox rows older than this are pruned, in hours.
        public var inboxRetentionHours = 168
        /// The most a task message carries of earlier steps' outputs (its `context`), in bytes of JSON.
        /// Past it the context keeps only the previous step's result and says what was left out, so a few
        /// large AI outputs never make task messages grow past what the broker accepts. 0: no bound.
        public var taskContextBytes = 256 << 10
        /// A start-up (and housekeeping) warning when this replica's clock differs from PostgreSQL's by more
        /// than this, in milliseconds. Deadlines follow PostgreSQL's clock either way.
        public var clockSkewWarningMilliseconds = 1_000
        /// How long a signal that no wait listens for yet is kept for a wait that starts later, in hours
        /// (0: not kept, a signal before its wait is ignored).
        public var signalRetentionHours = 168
        /// How deep `playbook:` steps may nest child runs: a child at a deeper level is not started and its
        /// step fails (a playbook that runs itself ends there).
        public var maxPlaybookDepth = 5
        /// The longest list a `for_each:` step takes; a longer one fails the step with this limit in the reason.
        public var maxForEachItems = 10_000
        /// What a step failure no `on_failure:` handles does in playbooks that do not say (`fail` or
        /// `incident`); see ``FailurePolicy``.
        public var onFailure = "fail"
        /// Whether this replica works on bulk operations (``BulkOperator``); any replica may.
        public var bulkOperator = true
        public init() {}
    }

    public struct Audit: Sendable, Hashable {
        /// Seconds between signed checkpoints over the run heads that moved.
        public var checkpointIntervalSeconds = 60
        /// The base64 of the Ed25519 private key that signs checkpoints (`hms-act audit keygen` makes one);
        /// set it from a Secret. ``placeholderSigningKey`` (the default) or empty means none: `serve`
        /// refuses to start with it unless `mode` is `development`, where it signs with a fresh key.
        public var signingKeyText = Self.placeholderSigningKey
        public init() {}

        /// The default of `audit.signing_key`, which is not a key.
        public static let placeholderSigningKey = "change-me"

        /// Whether no signing key is set (empty or the placeholder).
        public var hasNoSigningKey: Bool {
            let text = signingKeyText.trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty || text == Self.placeholderSigningKey
        }

        /// The checkpoint signing key.
        ///
        /// - Throws: ``ServiceConfiguration/SettingError`` when none is set or it cannot be read, saying how to make one.
        public func signingKey() throws(SettingError) -> AuditSigningKey {
            if hasNoSigningKey {
                throw SettingError(description: """
                    audit.signing_key (env HMS_AUDIT_SIGNING_KEY) is not set: checkpoints cannot be signed. Make a key \
                    with `hms-act audit keygen`, put HMS_AUDIT_SIGNING_KEY in the service's Secret and give the public \
                    key to whoever verifies; or, on a laptop or test stack only, set HMS_ACT_MODE=development to sign \
                    with a fresh key each start
                    """)
            }
            do {
                return try AuditSigningKey(base64: signingKeyText)
            } catch {
                throw SettingError(description: "audit.signing_key (env HMS_AUDIT_SIGNING_KEY): \(error)")
            }
        }
    }

    /// The `call:` steps hms-act performs itself over HTTP (``HTTPCaller``). A call whose service (the first
    /// segment of its path) has no base URL here, with no default either, is published for a bridge worker
    /// on `task.call.<method>.<path>` instead.
    public struct Calls: Sendable, Hashable {
        /// The base URL of every call whose service has none of its own ("": none), e.g. an API gateway.
        public var baseURL = ""
        /// `service=base URL` per service: `finance=http://finance.payments.svc:8080`.
        public var services: [String] = []
        /// How long one HTTP request may take, connect to last byte, in milliseconds.
        public var timeoutMilliseconds = 10_000
        /// Tries per task attempt when the service answers 5xx, 408 or 429, times out or cannot be reached;
        /// then the step fails as retryable and its `retry:` policy decides.
        public var attempts = 3
        /// The wait before the second try, doubled before each further one (a `Retry-After` of the
        /// answer, up to 60 s, replaces it), in milliseconds.
        public var backoffMilliseconds = 500
        /// Calls in flight at once per replica.
        public var concurrency = 64
        /// The largest response body taken as a step's output, in bytes; a larger one fails the step.
        public var maxResponseBytes = 1 << 20
        /// `service=rate` per service: `finance=50/min` (also `/s`, `/h`, `/d`): at most that many calls to
        /// the service begin per span, across every replica (``HTTPCaller``).
        public var rateLimits: [String] = []
        public init() {}

        /// The rate limit per service, parsed from ``rateLimits``.
        ///
        /// - Throws: ``SettingError`` for an entry that is not `name=count/span`.
        public func serviceRateLimits() throws(SettingError) -> [String: RateLimit] {
            var table: [String: RateLimit] = [:]
            for entry in rateLimits {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[0].contains("/"), let limit = RateLimit(parsing: parts[1])
                else {
                    throw SettingError(description: "calls.rate_limits (env HMS_CALL_RATE_LIMITS): \"\(entry)\" is not "
                        + "service=rate; write the first segment of the call's path and a rate, e.g. finance=50/min")
                }
                guard table[parts[0]] == nil else {
                    throw SettingError(description: "calls.rate_limits (env HMS_CALL_RATE_LIMITS): \(parts[0]) is listed twice; keep one")
                }
                table[parts[0]] = limit
            }
            return table
        }

        /// The base URL per service, parsed from ``services``.
        ///
        /// - Throws: ``SettingError`` for an entry that is not `name=http(s)://host…`.
        public func serviceBaseURLs() throws(SettingError) -> [String: String] {
            var table: [String: String] = [:]
            for entry in services {
                let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[0].contains("/") else {
                    throw SettingError(description: "calls.services (env HMS_CALL_SERVICES): \"\(entry)\" is not "
                        + "service=URL; write the first segment of the call's path and its base URL, e.g. "
                        + "finance=http://finance.svc:8080")
                }
                guard table[parts[0]] == nil else {
                    throw SettingError(description: "calls.services (env HMS_CALL_SERVICES): \(parts[0]) is listed twice; keep one")
                }
                table[parts[0]] = try Self.checkedBaseURL(parts[1], setting: "calls.services (env HMS_CALL_SERVICES) for \(parts[0])")
            }
            return table
        }

        /// Which calls hms-act performs (for the engine's routing).
        public func scope() throws(SettingError) -> CallScope {
            CallScope(all: !baseURL.isEmpty, services: Set(try serviceBaseURLs().keys))
        }

        /// A base URL without its trailing slash, after checking it is `http(s)://host[:port][/path]`.
        static func checkedBaseURL(_ text: String, setting: String) throws(SettingError) -> String {
            let lowered = text.lowercased()
            guard lowered.hasPrefix("http://") || lowered.hasPrefix("https://"),
                let components = URLComponents(string: text), let host = components.host, !host.isEmpty,
                components.query == nil, components.fragment == nil
            else {
                throw SettingError(description: "\(setting): \"\(text)\" is not a base URL; write http:// or https://, "
                    + "a host, an optional port and path, and no query, e.g. http://gateway.internal:8080/api")
            }
            var trimmed = text
            while trimmed.hasSuffix("/") { trimmed.removeLast() }
            return trimmed
        }
    }

    /// Event types bound to playbooks outside their files (chapter 000 prints a playbook with no trigger).
    public struct Triggers: Sendable, Hashable {
        /// `event.type=PlaybookID` per binding: `noise.complaint.filed=NoiseComplaint.v1`. Each registration of
        /// that playbook (the folder at start, or the API) binds the type as if the file named it.
        public var bindings: [String] = []
        public init() {}
    }

    /// ``Triggers/bindings`` by playbook id.
    ///
    /// - Throws: ``SettingError`` for an entry that is not `event.type=PlaybookID`.
    public func triggerBindings() throws(SettingError) -> [String: [String]] {
        var table: [String: [String]] = [:]
        for entry in triggers.bindings {
            guard let equals = entry.lastIndex(of: "="),
                case let type = entry[..<equals].trimmingCharacters(in: .whitespaces), !type.isEmpty,
                case let playbook = entry[entry.index(after: equals)...].trimmingCharacters(in: .whitespaces), !playbook.isEmpty,
                !type.contains(" "), !playbook.contains(" ")
            else {
                throw SettingError(description: "triggers.bindings (env HMS_TRIGGER_BINDINGS): \"\(entry)\" is not "
                    + "event.type=PlaybookID; write the event type, =, and the playbook's id, e.g. "
                    + "noise.complaint.filed=NoiseComplaint.v1")
            }
            if !(table[playbook]?.contains(type) ?? false) { table[playbook, default: []].append(type) }
        }
        return table
    }

    /// What `hms-act retention run` keeps (docs/operations.md, "Retention and archive").
    public struct Retention: Sendable, Hashable {
        /// Days a finished run is kept before it is archived and removed; 0 keeps runs for ever.
        public var keepFinishedDays = 0
        /// Folder the archive files are written to.
        public var archiveDirectory = "archive"
        public init() {}
    }

    public struct Paths: Sendable, Hashable {
        public var playbooks = "playbooks"
        public var agents = "agents"
        public init() {}
    }
}
