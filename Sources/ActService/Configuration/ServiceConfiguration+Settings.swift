internal import ActPlaybook

/// The table of settings: each configuration key, its environment variable and where it lands.
/// `ActCLI` applies `config/hms-act.yaml` and then the environment through this table, and the docs'
/// configuration table is this table.
extension ServiceConfiguration {
    public struct Setting: Sendable {
        public enum Target: Sendable {
            case string(any WritableKeyPath<ServiceConfiguration, String> & Sendable)
            case int(any WritableKeyPath<ServiceConfiguration, Int> & Sendable)
            case double(any WritableKeyPath<ServiceConfiguration, Double> & Sendable)
            /// `true` or `false`.
            case bool(any WritableKeyPath<ServiceConfiguration, Bool> & Sendable)
            /// A list; in the environment, comma-separated.
            case strings(any WritableKeyPath<ServiceConfiguration, [String]> & Sendable)
        }

        /// Dotted key in `config/hms-act.yaml`: `amqp.url`.
        public var key: String
        /// The environment variable that overrides it: `HMS_AMQP_URL`.
        public var environment: String
        public var target: Target
        public var summary: String
    }

    public static let settings: [Setting] = [
        .init(key: "mode", environment: "HMS_ACT_MODE", target: .string(\.mode),
            summary: "production, or development to allow placeholder keys and default credentials"),
        .init(key: "amqp.url", environment: "AMQP_URL", target: .string(\.amqp.url),
            summary: "Broker URL, amqp:// or amqps://"),
        .init(key: "amqp.require_tls", environment: "HMS_AMQP_REQUIRE_TLS", target: .bool(\.amqp.requireTLS),
            summary: "Refuse to start unless amqp.url is amqps:// with certificate and host name verification"),
        .init(key: "amqp.tls.ca_file", environment: "HMS_AMQP_TLS_CA_FILE", target: .string(\.amqp.tls.caFile),
            summary: "CA certificates (PEM) that sign the broker's certificate; overrides the URL's cacertfile"),
        .init(key: "amqp.tls.cert_file", environment: "HMS_AMQP_TLS_CERT_FILE", target: .string(\.amqp.tls.certFile),
            summary: "Client certificate (PEM) for mutual TLS; needs amqp.tls.key_file"),
        .init(key: "amqp.tls.key_file", environment: "HMS_AMQP_TLS_KEY_FILE", target: .string(\.amqp.tls.keyFile),
            summary: "The client certificate's private key (PEM)"),
        .init(key: "amqp.heartbeat_seconds", environment: "HMS_AMQP_HEARTBEAT_SECONDS", target: .int(\.amqp.heartbeatSeconds),
            summary: "AMQP heartbeat interval"),
        .init(key: "amqp.prefetch", environment: "HMS_AMQP_PREFETCH", target: .int(\.amqp.prefetch),
            summary: "Unacknowledged deliveries per consumer"),
        .init(key: "amqp.queue_type", environment: "HMS_AMQP_QUEUE_TYPE", target: .string(\.amqp.queueType),
            summary: "quorum or classic, for the queues hms-act declares"),
        .init(key: "amqp.delivery_limit", environment: "HMS_AMQP_DELIVERY_LIMIT", target: .int(\.amqp.deliveryLimit),
            summary: "Redeliveries before RabbitMQ dead-letters a message (quorum queues)"),
        .init(key: "amqp.max_message_bytes", environment: "HMS_AMQP_MAX_MESSAGE_BYTES", target: .int(\.amqp.maxMessageBytes),
            summary: "Largest message the broker accepts (its max_message_size); larger outbox rows are deferred with an incident"),
        .init(key: "amqp.actors", environment: "HMS_AMQP_ACTORS", target: .strings(\.amqp.actors),
            summary: "Who each RabbitMQ user may act as on hms.results: user=pattern;pattern (AMQP user_id required when set)"),
        .init(key: "amqp.exchanges.events", environment: "HMS_EXCHANGE_EVENTS", target: .string(\.amqp.exchanges.events),
            summary: "Topic exchange of trigger events"),
        .init(key: "amqp.exchanges.tasks", environment: "HMS_EXCHANGE_TASKS", target: .string(\.amqp.exchanges.tasks),
            summary: "Topic exchange tasks are published to"),
        .init(key: "amqp.exchanges.results", environment: "HMS_EXCHANGE_RESULTS", target: .string(\.amqp.exchanges.results),
            summary: "Topic exchange workers publish results to"),
        .init(key: "amqp.exchanges.governance", environment: "HMS_EXCHANGE_GOVERNANCE",
            target: .string(\.amqp.exchanges.governance), summary: "Topic exchange of metrics, SLA and run events"),
        .init(key: "amqp.exchanges.dead", environment: "HMS_EXCHANGE_DEAD", target: .string(\.amqp.exchanges.dead),
            summary: "Dead-letter exchange"),
        .init(key: "amqp.queues.triggers", environment: "HMS_QUEUE_TRIGGERS", target: .string(\.amqp.queues.triggers),
            summary: "Queue hms-act consumes triggers from"),
        .init(key: "amqp.queues.results", environment: "HMS_QUEUE_RESULTS", target: .string(\.amqp.queues.results),
            summary: "Queue hms-act consumes results from"),
        .init(key: "amqp.queues.dead", environment: "HMS_QUEUE_DEAD", target: .string(\.amqp.queues.dead),
            summary: "Queue collecting dead-lettered messages for operators"),
        .init(key: "postgres.url", environment: "POSTGRES_URL", target: .string(\.postgres.url),
            summary: "PostgreSQL URL"),
        .init(key: "postgres.require_tls", environment: "HMS_POSTGRES_REQUIRE_TLS", target: .bool(\.postgres.requireTLS),
            summary: "Refuse to start unless postgres.url has sslmode=verify-full"),
        .init(key: "postgres.ssl_root_cert", environment: "HMS_POSTGRES_SSL_ROOT_CERT",
            target: .string(\.postgres.sslRootCert),
            summary: "libpq sslrootcert: CA certificates (PEM) that sign the server's certificate; overrides the URL's"),
        .init(key: "postgres.ssl_cert", environment: "HMS_POSTGRES_SSL_CERT", target: .string(\.postgres.sslCert),
            summary: "libpq sslcert: client certificate (PEM); needs postgres.ssl_key"),
        .init(key: "postgres.ssl_key", environment: "HMS_POSTGRES_SSL_KEY", target: .string(\.postgres.sslKey),
            summary: "libpq sslkey: the client certificate's private key (mode 0600)"),
        .init(key: "postgres.pool_size", environment: "HMS_POSTGRES_POOL_SIZE", target: .int(\.postgres.poolSize),
            summary: "Connections in the pool"),
        .init(key: "postgres.schema", environment: "HMS_POSTGRES_SCHEMA", target: .string(\.postgres.schema),
            summary: "Schema holding hms-act's tables"),
        .init(key: "postgres.migrate_at_start", environment: "HMS_POSTGRES_MIGRATE_AT_START",
            target: .bool(\.postgres.migrateAtStart),
            summary: "serve applies pending migrations at start (false: the migration Job does, and serve refuses a schema that lacks one)"),
        .init(key: "postgres.app_role", environment: "HMS_POSTGRES_APP_ROLE", target: .string(\.postgres.appRole),
            summary: "The role serve runs as, when another role owns the schema: hms-act migrate grants it its rights"),
        .init(key: "postgres.pool_acquire_timeout_ms", environment: "HMS_POSTGRES_POOL_ACQUIRE_TIMEOUT_MS",
            target: .int(\.postgres.poolAcquireTimeoutMilliseconds),
            summary: "Wait for a free pooled connection before failing the operation"),
        .init(key: "postgres.statement_timeout_ms", environment: "HMS_POSTGRES_STATEMENT_TIMEOUT_MS",
            target: .int(\.postgres.statementTimeoutMilliseconds),
            summary: "statement_timeout of every connection (0: none, and no client deadline)"),
        .init(key: "postgres.lock_timeout_ms", environment: "HMS_POSTGRES_LOCK_TIMEOUT_MS",
            target: .int(\.postgres.lockTimeoutMilliseconds),
            summary: "lock_timeout of every connection: a lock wait fails with 55P03 after this (0: none)"),
        .init(key: "postgres.idle_in_transaction_timeout_ms", environment: "HMS_POSTGRES_IDLE_IN_TRANSACTION_TIMEOUT_MS",
            target: .int(\.postgres.idleInTransactionTimeoutMilliseconds),
            summary: "idle_in_transaction_session_timeout: the server ends a session idle inside a transaction (0: none)"),
        .init(key: "postgres.answer_grace_ms", environment: "HMS_POSTGRES_ANSWER_GRACE_MS",
            target: .int(\.postgres.answerGraceMilliseconds),
            summary: "Client deadline beyond the statement timeout: a connection silent that long is closed and replaced"),
        .init(key: "postgres.connect_timeout_seconds", environment: "HMS_POSTGRES_CONNECT_TIMEOUT_SECONDS",
            target: .int(\.postgres.connectTimeoutSeconds),
            summary: "libpq connect_timeout (at least 2; overrides connect_timeout in the URL)"),
        .init(key: "postgres.keepalives_idle_seconds", environment: "HMS_POSTGRES_KEEPALIVES_IDLE_SECONDS",
            target: .int(\.postgres.keepalivesIdleSeconds),
            summary: "TCP keepalives: silence before the first probe (0: keepalives off)"),
        .init(key: "postgres.keepalives_interval_seconds", environment: "HMS_POSTGRES_KEEPALIVES_INTERVAL_SECONDS",
            target: .int(\.postgres.keepalivesIntervalSeconds), summary: "TCP keepalives: time between unanswered probes"),
        .init(key: "postgres.keepalives_count", environment: "HMS_POSTGRES_KEEPALIVES_COUNT",
            target: .int(\.postgres.keepalivesCount), summary: "TCP keepalives: unanswered probes before the connection drops"),
        .init(key: "postgres.tcp_user_timeout_ms", environment: "HMS_POSTGRES_TCP_USER_TIMEOUT_MS",
            target: .int(\.postgres.tcpUserTimeoutMilliseconds),
            summary: "tcp_user_timeout: sent data unacknowledged this long drops the connection (0: system default)"),
        .init(key: "http.host", environment: "HMS_HTTP_HOST", target: .string(\.http.host), summary: "HTTP listen address"),
        .init(key: "http.port", environment: "HMS_HTTP_PORT", target: .int(\.http.port), summary: "HTTP port (0: any free port)"),
        .init(key: "http.tokens", environment: "HMS_API_TOKENS", target: .strings(\.http.tokens),
            summary: "Bearer tokens as name:sha256:HEX:scope+scope (hms-act token hash) or name:secret:scope+scope; scopes read, operate, admin; a trailing :agents=ID+ID binds a token to those agents' tasks"),
        .init(key: "http.anonymous", environment: "HMS_HTTP_ANONYMOUS", target: .bool(\.http.anonymous),
            summary: "Requests without a token act as anonymous (read, operate): the local demo's mode; loopback http.host only"),
        .init(key: "engine.sla_warning_fraction", environment: "HMS_SLA_WARNING_FRACTION",
            target: .double(\.engine.slaWarningFraction), summary: "SLA warning point as a fraction of the SLA"),
        .init(key: "engine.batch_size", environment: "HMS_BATCH_SIZE", target: .int(\.engine.batchSize),
            summary: "Deliveries applied per transaction"),
        .init(key: "engine.batch_bytes", environment: "HMS_BATCH_BYTES", target: .int(\.engine.batchBytes),
            summary: "Most bytes of message bodies applied per transaction"),
        .init(key: "engine.batch_state_bytes", environment: "HMS_BATCH_STATE_BYTES", target: .int(\.engine.batchStateBytes),
            summary: "Most bytes of run state one transaction loads; a batch over it is applied in several"),
        .init(key: "engine.consumer_buffer_bytes", environment: "HMS_CONSUMER_BUFFER_BYTES",
            target: .int(\.engine.consumerBufferBytes),
            summary: "Most bytes of unacknowledged bodies per consumer: prefetch is at most this / 1 MiB (the largest message)"),
        .init(key: "engine.batch_wait_ms", environment: "HMS_BATCH_WAIT_MS", target: .int(\.engine.batchWaitMilliseconds),
            summary: "Wait for more deliveries before applying a batch"),
        .init(key: "engine.outbox_batch_size", environment: "HMS_OUTBOX_BATCH_SIZE", target: .int(\.engine.outboxBatchSize),
            summary: "Outbox rows per confirm batch"),
        .init(key: "engine.outbox_batch_bytes", environment: "HMS_OUTBOX_BATCH_BYTES", target: .int(\.engine.outboxBatchBytes),
            summary: "Most bytes of message bodies one relay claims at once"),
        .init(key: "engine.outbox_relays", environment: "HMS_OUTBOX_RELAYS", target: .int(\.engine.outboxRelays),
            summary: "Outbox relays per replica, each for its share of the runs"),
        .init(key: "engine.timer_poll_ms", environment: "HMS_TIMER_POLL_MS", target: .int(\.engine.timerPollMilliseconds),
            summary: "Timer scan interval when not woken by NOTIFY"),
        .init(key: "engine.inbox_retention_hours", environment: "HMS_INBOX_RETENTION_HOURS",
            target: .int(\.engine.inboxRetentionHours), summary: "How long processed message ids are kept"),
        .init(key: "engine.task_context_bytes", environment: "HMS_TASK_CONTEXT_BYTES",
            target: .int(\.engine.taskContextBytes),
            summary: "Most bytes of earlier steps' outputs a task message carries in `context` (0: no bound)"),
        .init(key: "engine.clock_skew_warning_ms", environment: "HMS_CLOCK_SKEW_WARNING_MS",
            target: .int(\.engine.clockSkewWarningMilliseconds),
            summary: "Warn when this replica's clock differs from PostgreSQL's by more (deadlines follow PostgreSQL's clock)"),
        .init(key: "engine.signal_retention_hours", environment: "HMS_SIGNAL_RETENTION_HOURS",
            target: .int(\.engine.signalRetentionHours),
            summary: "How long a signal no wait listens for yet is kept for a wait that starts later (0: ignored)"),
        .init(key: "engine.max_playbook_depth", environment: "HMS_MAX_PLAYBOOK_DEPTH",
            target: .int(\.engine.maxPlaybookDepth),
            summary: "How deep sub-playbooks (`playbook:` steps) may nest; a deeper child is not started and its step fails"),
        .init(key: "engine.max_for_each_items", environment: "HMS_MAX_FOR_EACH_ITEMS",
            target: .int(\.engine.maxForEachItems),
            summary: "The longest list a `for_each:` step takes; a longer one fails the step"),
        .init(key: "engine.bulk_operator", environment: "HMS_BULK_OPERATOR", target: .bool(\.engine.bulkOperator),
            summary: "Whether this replica works on bulk operations (POST /v1/bulk-operations); any replica may, one at a time per operation"),
        .init(key: "engine.on_failure", environment: "HMS_ON_FAILURE", target: .string(\.engine.onFailure),
            summary: "What an unhandled step failure does in playbooks without a top-level on_failure: fail (compensate, end failed) or incident (wait for an operator)"),
        .init(key: "audit.checkpoint_interval_seconds", environment: "HMS_AUDIT_CHECKPOINT_SECONDS",
            target: .int(\.audit.checkpointIntervalSeconds), summary: "Seconds between audit checkpoints"),
        .init(key: "audit.signing_key", environment: "HMS_AUDIT_SIGNING_KEY", target: .string(\.audit.signingKeyText),
            summary: "Base64 Ed25519 private key that signs checkpoints, from a Secret (`hms-act audit keygen`); required unless mode is development"),
        .init(key: "calls.base_url", environment: "HMS_CALL_BASE_URL", target: .string(\.calls.baseURL),
            summary: "Base URL of every `call:` step whose service has none in calls.services (empty: such calls go to a bridge worker over AMQP)"),
        .init(key: "calls.services", environment: "HMS_CALL_SERVICES", target: .strings(\.calls.services),
            summary: "Base URL per service (the call path's first segment): finance=http://finance.svc:8080,notify=https://…"),
        .init(key: "calls.rate_limits", environment: "HMS_CALL_RATE_LIMITS", target: .strings(\.calls.rateLimits),
            summary: "At most this many calls per span to a service, across every replica: finance=50/min,notify=10/s"),
        .init(key: "calls.timeout_ms", environment: "HMS_CALL_TIMEOUT_MS", target: .int(\.calls.timeoutMilliseconds),
            summary: "Longest one HTTP request of a `call:` step may take"),
        .init(key: "calls.attempts", environment: "HMS_CALL_ATTEMPTS", target: .int(\.calls.attempts),
            summary: "Tries per task attempt on 5xx, 408, 429, timeouts and refused connections (then the step's retry: decides)"),
        .init(key: "calls.backoff_ms", environment: "HMS_CALL_BACKOFF_MS", target: .int(\.calls.backoffMilliseconds),
            summary: "Wait before the second try, doubled each time (a Retry-After up to 60 s wins)"),
        .init(key: "calls.concurrency", environment: "HMS_CALL_CONCURRENCY", target: .int(\.calls.concurrency),
            summary: "HTTP calls in flight at once per replica"),
        .init(key: "calls.max_response_bytes", environment: "HMS_CALL_MAX_RESPONSE_BYTES",
            target: .int(\.calls.maxResponseBytes), summary: "Largest response body kept as a call step's output; a larger one fails the step"),
        .init(key: "triggers.bindings", environment: "HMS_TRIGGER_BINDINGS", target: .strings(\.triggers.bindings),
            summary: "Event types bound to playbooks outside their files: event.type=PlaybookID,… (chapter 000's playbook names no trigger)"),
        .init(key: "retention.keep_finished_days", environment: "HMS_RETENTION_KEEP_FINISHED_DAYS",
            target: .int(\.retention.keepFinishedDays),
            summary: "Days a finished run is kept before `hms-act retention run` archives and removes it (0: kept for ever)"),
        .init(key: "retention.archive_dir", environment: "HMS_RETENTION_ARCHIVE_DIR", target: .string(\.retention.archiveDirectory),
            summary: "Folder `hms-act retention run` writes its archive files to (keep it where the database's operators cannot rewrite it)"),
        .init(key: "paths.playbooks", environment: "HMS_PLAYBOOKS_DIR", target: .string(\.paths.playbooks),
            summary: "Folder of playbooks loaded at start"),
        .init(key: "paths.agents", environment: "HMS_AGENTS_DIR", target: .string(\.paths.agents),
            summary: "Folder of agent descriptions"),
    ]

    /// A value that does not fit its setting.
    public struct SettingError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Sets the setting `key` (dotted) from its text form: numbers parse, lists split on commas.
    ///
    /// - Throws: ``SettingError`` naming the key, the source and the expected form.
    public mutating func apply(_ setting: Setting, text: String, source: String) throws(SettingError) {
        switch setting.target {
        case .string(let path):
            self[keyPath: path] = text
        case .int(let path):
            guard let value = Int(text.trimmingCharacters(in: " ")) else {
                throw SettingError(description: "\(source): \(setting.key) must be a whole number, got \"\(text)\"")
            }
            self[keyPath: path] = value
        case .double(let path):
            guard let value = Double(text.trimmingCharacters(in: " ")) else {
                throw SettingError(description: "\(source): \(setting.key) must be a number, got \"\(text)\"")
            }
            self[keyPath: path] = value
        case .bool(let path):
            switch text.trimmingCharacters(in: " ").lowercased() {
            case "true", "yes", "on", "1": self[keyPath: path] = true
            case "false", "no", "off", "0": self[keyPath: path] = false
            default:
                throw SettingError(description: "\(source): \(setting.key) must be true or false, got \"\(text)\"")
            }
        case .strings(let path):
            self[keyPath: path] = text.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }
                .filter { !$0.isEmpty }
        }
    }

    /// Applies overrides from an environment dictionary (only the variables in ``settings``).
    public mutating func applyEnvironment(_ environment: [String: String]) throws(SettingError) {
        for setting in Self.settings {
            if let text = environment[setting.environment] {
                try apply(setting, text: text, source: "environment variable \(setting.environment)")
            }
        }
    }

    /// Checks ranges that would otherwise fail later and less clearly.
    /// Refuses a token bound (`:agents=`) to an agent the registry does not hold: a typo there would lock
    /// the worker out with a 403 on every claim. `serve` calls it once the agents are loaded.
    ///
    /// - Parameter known: The ids of the registry's agents.
    public func checkTokenAgents(known: [String]) throws(SettingError) {
        let registry = Set(known)
        for specification in http.tokens {
            guard let entry = try? APITokenEntry(parsing: specification), let agents = entry.agents else { continue }
            for agent in agents where !registry.contains(agent) {
                let listed = known.sorted().joined(separator: ", ")
                throw SettingError(description: "http.tokens: token \(entry.name) is bound to agent \(agent), which is "
                    + "not in the agent registry (\(listed.isEmpty ? "no agents are loaded" : "its agents: \(listed)")); "
                    + "fix the id after agents= in HMS_API_TOKENS, or add the agent to paths.agents")
            }
        }
    }

    public func validate() throws(SettingError) {
        func require(_ condition: Bool, _ message: String) throws(SettingError) {
            if !condition { throw SettingError(description: message) }
        }
        try require((0.0..<1.0).contains(engine.slaWarningFraction) && engine.slaWarningFraction > 0,
            "engine.sla_warning_fraction must be between 0 and 1 (e.g. 0.8), got \(engine.slaWarningFraction)")
        try require(engine.batchSize >= 1 && engine.batchSize <= 10_000, "engine.batch_size must be 1…10000")
        try require(engine.outboxRelays >= 1 && engine.outboxRelays <= 16, "engine.outbox_relays must be 1…16")
        try require(amqp.prefetch >= 1 && amqp.prefetch <= 65_535, "amqp.prefetch must be 1…65535")
        try require(amqp.maxMessageBytes >= 0, "amqp.max_message_bytes must be 0 (no check) or a size in bytes")
        try require(engine.batchBytes >= 1 << 20, "engine.batch_bytes must be at least 1048576 (one message of the largest size)")
        try require(engine.consumerBufferBytes >= 1 << 20,
            "engine.consumer_buffer_bytes must be at least 1048576 (one message of the largest size)")
        try require(engine.batchStateBytes >= 1 << 20, "engine.batch_state_bytes must be at least 1048576")
        try require(engine.outboxBatchBytes >= 1 << 20, "engine.outbox_batch_bytes must be at least 1048576")
        try require((0...87_600).contains(engine.signalRetentionHours), "engine.signal_retention_hours must be 0…87600")
        try require((1...100).contains(engine.maxPlaybookDepth), "engine.max_playbook_depth must be 1…100")
        try require((1...1_000_000).contains(engine.maxForEachItems), "engine.max_for_each_items must be 1…1000000")
        try require(FailurePolicy(rawValue: engine.onFailure) != nil,
            "engine.on_failure must be fail or incident, not '\(engine.onFailure)'")
        try require((0...36_500).contains(retention.keepFinishedDays),
            "retention.keep_finished_days must be 0 (keep for ever) … 36500, got \(retention.keepFinishedDays)")
        try require(!retention.archiveDirectory.isEmpty, "retention.archive_dir must name a folder (e.g. archive)")
        try require(engine.taskContextBytes >= 0, "engine.task_context_bytes must be 0 (no bound) or a size in bytes")
        try require(["production", "development"].contains(mode), "mode must be production or development")
        if !audit.hasNoSigningKey { _ = try audit.signingKey() }
        do { _ = try BrokerIdentities(entries: amqp.actors) } catch { throw SettingError(description: error.description) }
        try require(["quorum", "classic"].contains(amqp.queueType), "amqp.queue_type must be quorum or classic")
        try require(postgres.poolSize >= 2, "postgres.pool_size must be at least 2 (one connection listens for timers)")
        // PostgreSQL takes time settings up to INT_MAX milliseconds (about 24.8 days).
        let milliseconds = 0...Int(Int32.max)
        for (key, value) in [
            ("postgres.statement_timeout_ms", postgres.statementTimeoutMilliseconds),
            ("postgres.lock_timeout_ms", postgres.lockTimeoutMilliseconds),
            ("postgres.idle_in_transaction_timeout_ms", postgres.idleInTransactionTimeoutMilliseconds),
            ("postgres.answer_grace_ms", postgres.answerGraceMilliseconds),
            ("postgres.tcp_user_timeout_ms", postgres.tcpUserTimeoutMilliseconds),
        ] {
            try require(milliseconds.contains(value), "\(key) must be 0…\(Int32.max) milliseconds (0: off), got \(value)")
        }
        try require((1...Int(Int32.max)).contains(postgres.poolAcquireTimeoutMilliseconds),
            "postgres.pool_acquire_timeout_ms must be at least 1 millisecond (e.g. 10000)")
        try require(postgres.connectTimeoutSeconds >= 2 && postgres.connectTimeoutSeconds <= 3600,
            "postgres.connect_timeout_seconds must be 2…3600 (libpq treats less than 2 as 2 and 0 as forever)")
        try require(postgres.keepalivesIdleSeconds >= 0 && postgres.keepalivesIdleSeconds <= 32_767,
            "postgres.keepalives_idle_seconds must be 0…32767 (0 turns keepalives off)")
        try require(postgres.keepalivesIntervalSeconds >= 1 && postgres.keepalivesIntervalSeconds <= 32_767,
            "postgres.keepalives_interval_seconds must be 1…32767")
        try require(postgres.keepalivesCount >= 1 && postgres.keepalivesCount <= 127,
            "postgres.keepalives_count must be 1…127")
        try require((0...65_535).contains(http.port), "http.port must be 0…65535")
        try require(!http.anonymous || http.isLoopback,
            "http.anonymous lets anyone who reaches the API run and answer workflows without a token, so it is only "
                + "allowed on a loopback http.host (127.0.0.1, ::1, localhost), not \(http.host): set HMS_HTTP_HOST=127.0.0.1, "
                + "or turn it off (HMS_HTTP_ANONYMOUS=false) and give clients tokens (HMS_API_TOKENS)")
        try require(postgres.schema.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } && !postgres.schema.isEmpty,
            "postgres.schema must be letters, digits and underscores")
        if !calls.baseURL.isEmpty {
            _ = try Calls.checkedBaseURL(calls.baseURL, setting: "calls.base_url (env HMS_CALL_BASE_URL)")
        }
        _ = try calls.serviceBaseURLs()
        _ = try calls.serviceRateLimits()
        _ = try triggerBindings()
        try require((100...3_600_000).contains(calls.timeoutMilliseconds), "calls.timeout_ms must be 100…3600000 (e.g. 10000)")
        try require((1...20).contains(calls.attempts), "calls.attempts must be 1…20 (1: no retry within a task attempt)")
        try require((0...600_000).contains(calls.backoffMilliseconds), "calls.backoff_ms must be 0…600000")
        try require((1...10_000).contains(calls.concurrency), "calls.concurrency must be 1…10000")
        try require((1_024...(64 << 20)).contains(calls.maxResponseBytes), "calls.max_response_bytes must be 1024…67108864")
        // Two entries may share a name: the old and the new secret of one principal while it is rotated.
        for token in http.tokens {
            do { _ = try APITokenEntry(parsing: token) } catch { throw SettingError(description: error.description) }
        }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.first == set { text.removeFirst() }
        while text.last == set { text.removeLast() }
        return String(text)
    }
}
