/// Every SQL statement of hms-act, named and grouped by table (STYLE.md §3.7). Values are always `$n`
/// parameters; times cross the boundary as milliseconds since the epoch (`ms(x)` reads, `ts($n)` writes).
enum StoreSQL {
    // MARK: schema_migrations

    static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer     PRIMARY KEY,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    /// Serialises migrations across replicas starting at once (key: "hms-act" in ASCII).
    static let migrationLock = "SELECT pg_advisory_xact_lock(7523665358119495796)"
    static let appliedMigrations = "SELECT version, checksum FROM schema_migrations ORDER BY version"
    static let migrationsTableExists = """
        SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations')
        """
    /// The serving role's rights (``Store/grantServingRights(to:)``); `schema` and `role` were checked to be
    /// plain names and are quoted here.
    static func grantServingRights(schema: String, role: String) -> String {
        let s = "\"\(schema)\"", r = "\"\(role)\""
        return """
            GRANT USAGE ON SCHEMA \(s) TO \(r);
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \(s) TO \(r);
            GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \(s) TO \(r);
            GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA \(s) TO \(r);
            REVOKE TRUNCATE ON ALL TABLES IN SCHEMA \(s) FROM \(r);
            REVOKE UPDATE, DELETE ON audit_log FROM \(r);
            REVOKE DELETE ON audit_checkpoints FROM \(r);
            -- The audit partitions: the months made so far; later ones inherit the defaults below, and every
            -- one carries the append-only triggers of audit_log, which only their owner could disable.
            DO $grant$
            DECLARE partition regclass;
            BEGIN
                FOR partition IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_log'::regclass LOOP
                    EXECUTE format('REVOKE UPDATE, DELETE ON %s FROM %I', partition, '\(role)');
                END LOOP;
            END;
            $grant$;
            ALTER DEFAULT PRIVILEGES IN SCHEMA \(s) GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \(r);
            ALTER DEFAULT PRIVILEGES IN SCHEMA \(s) GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO \(r);
            """
    }
    static let recordMigration = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"

    // MARK: playbook_versions

    static let insertPlaybookVersion = """
        INSERT INTO playbook_versions (playbook_id, checksum, source, model, triggers)
        SELECT $1, $2, $3, $4::jsonb, ARRAY(SELECT jsonb_array_elements_text($5::jsonb))
        ON CONFLICT (playbook_id, checksum) DO NOTHING
        RETURNING version_id
        """
    static let playbookVersionColumns = """
        version_id, playbook_id, checksum, source, model::text, array_to_json(triggers)::text,
        (extract(epoch FROM registered_at) * 1000)::bigint
        """
    static let playbookVersionByChecksum =
        "SELECT \(playbookVersionColumns) FROM playbook_versions WHERE playbook_id = $1 AND checksum = $2"
    static let playbookVersionsAfter =
        "SELECT \(playbookVersionColumns) FROM playbook_versions WHERE version_id > $1 ORDER BY version_id"
    static let playbookVersionByID = "SELECT \(playbookVersionColumns) FROM playbook_versions WHERE version_id = $1"

    // MARK: runs

    static let runColumns = """
        run_id, playbook_id, version_id, status, state::text, trace_id, trigger_event_id, trigger_type,
        audit_seq, audit_head, (extract(epoch FROM created_at) * 1000)::bigint,
        (extract(epoch FROM updated_at) * 1000)::bigint, (extract(epoch FROM finished_at) * 1000)::bigint
        """
    static let lockRuns = """
        SELECT \(runColumns) FROM runs
        WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        ORDER BY run_id
        FOR UPDATE
        """
    /// Locks the runs like ``lockRuns`` but returns states only while their sizes, added up in run-id order,
    /// stay within $2 bytes (the first state always): `included` says which. Rows past the bound stay
    /// locked; their inputs wait for the next transaction.
    ///
    /// Every column comes from the locking scan itself: after waiting for another transaction's lock,
    /// `FOR UPDATE` returns the row as that transaction committed it, while a second scan of `runs` in the
    /// same statement would read the statement's older snapshot (the stale audit sequence then made the
    /// next audit entry a duplicate). A state is carried through the CTE as stored (a TOAST pointer for a
    /// large one) and turned into text only when it is within the bound.
    static let lockRunsWithin = """
        WITH locked AS (
            SELECT run_id, playbook_id, version_id, status, state, state_bytes, trace_id, trigger_event_id,
                   trigger_type, audit_seq, audit_head, created_at, updated_at, finished_at
            FROM runs
            WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
            ORDER BY run_id
            FOR UPDATE
        ), sized AS (
            SELECT *, sum(state_bytes) OVER (ORDER BY run_id) - state_bytes AS before FROM locked
        )
        SELECT run_id, playbook_id, version_id, status,
               CASE WHEN before = 0 OR before + state_bytes <= $2::int8 THEN state::text END,
               trace_id, trigger_event_id, trigger_type, audit_seq, audit_head,
               (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM updated_at) * 1000)::bigint,
               (extract(epoch FROM finished_at) * 1000)::bigint
        FROM sized
        ORDER BY run_id
        """
    static let runByID = "SELECT \(runColumns) FROM runs WHERE run_id = $1"
    /// Runs that are not finished whose business key (else trigger event id) is $1, of playbook $2 when not
    /// NULL; oldest first, at most 100.
    static let activeRunsByCorrelationKey = """
        SELECT run_id FROM runs
        WHERE coalesce(business_key, trigger_event_id) = $1 AND ($2::text IS NULL OR playbook_id = $2)
          AND status IN ('running', 'paused')
        ORDER BY created_at, run_id LIMIT 100
        """
    /// The run whose trace id is $1 (the newest, should two share it).
    static let runIDByTraceID = "SELECT run_id FROM runs WHERE trace_id = $1 ORDER BY created_at DESC LIMIT 1"
    static let upsertRuns = """
        INSERT INTO runs (run_id, playbook_id, version_id, status, state, state_bytes, trace_id, trigger_event_id,
                          trigger_type, audit_seq, audit_head, created_at, updated_at, finished_at, business_key)
        SELECT r.run_id, r.playbook_id, r.version_id, r.status, r.state, r.state_bytes, r.trace_id, r.trigger_event_id,
               r.trigger_type, r.audit_seq, decode(r.audit_head, 'hex'), to_timestamp(r.created_ms / 1000.0),
               to_timestamp(r.updated_ms / 1000.0), to_timestamp(r.finished_ms / 1000.0), r.business_key
        FROM jsonb_to_recordset($1::jsonb) AS r(run_id text, playbook_id text, version_id bigint, status text,
             state jsonb, state_bytes integer, trace_id text, trigger_event_id text, trigger_type text, audit_seq bigint,
             audit_head text, created_ms bigint, updated_ms bigint, finished_ms bigint, business_key text)
        ON CONFLICT (run_id) DO UPDATE SET
            status = excluded.status, state = excluded.state, state_bytes = excluded.state_bytes,
            version_id = excluded.version_id, playbook_id = excluded.playbook_id,
            audit_seq = excluded.audit_seq,
            audit_head = excluded.audit_head, updated_at = excluded.updated_at, finished_at = excluded.finished_at
        """
    static let runSummaryColumns = """
        r.run_id, r.playbook_id, r.status, r.trace_id, r.trigger_type,
        (extract(epoch FROM r.created_at) * 1000)::bigint, (extract(epoch FROM r.updated_at) * 1000)::bigint,
        (extract(epoch FROM r.finished_at) * 1000)::bigint
        """
    /// The conditions every run listing shares (NULL matches all): `$1` status, `$2` playbook, `$3`/`$4` the
    /// cursor (created ms, run id), `$6`/`$7` the created range (ms).
    static let runConditions = """
        ($1::text IS NULL OR r.status = $1)
          AND ($2::text IS NULL OR r.playbook_id = $2)
          AND ($3::bigint IS NULL OR (r.created_at, r.run_id) < (to_timestamp($3 / 1000.0), $4::text))
          AND ($6::bigint IS NULL OR r.created_at >= to_timestamp($6 / 1000.0))
          AND ($7::bigint IS NULL OR r.created_at < to_timestamp($7 / 1000.0))
        """
    /// Newest first; keyset paging on (created_at, run_id); `$5` the limit.
    static let listRuns = """
        SELECT \(runSummaryColumns) FROM runs r
        WHERE \(runConditions)
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT $5
        """
    /// ``listRuns`` for one business key `$8` (the playbook's `key:`, else the trigger event's id): its own
    /// statement, so the plan always uses the index on that expression.
    static let listRunsByKey = """
        SELECT \(runSummaryColumns) FROM runs r
        WHERE coalesce(r.business_key, r.trigger_event_id) = $8 AND \(runConditions)
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT $5
        """
    /// ``listRuns`` for runs whose trigger payload contains `$8` (jsonb `@>`, along the GIN index), and have
    /// the business key `$9` when given. The matches are ordered by their own copy of `created_at` (small rows)
    /// and runs are read only for the page, so a value shared by many runs costs a sort, not a read of each.
    static let listRunsByPayload = """
        SELECT \(runSummaryColumns) FROM run_payloads p JOIN runs r ON r.run_id = p.run_id
        WHERE p.payload @> $8::jsonb
          AND ($3::bigint IS NULL OR (p.created_at, p.run_id) < (to_timestamp($3 / 1000.0), $4::text))
          AND ($6::bigint IS NULL OR p.created_at >= to_timestamp($6 / 1000.0))
          AND ($7::bigint IS NULL OR p.created_at < to_timestamp($7 / 1000.0))
          AND ($1::text IS NULL OR r.status = $1)
          AND ($2::text IS NULL OR r.playbook_id = $2)
          AND ($9::text IS NULL OR coalesce(r.business_key, r.trigger_event_id) = $9)
        ORDER BY p.created_at DESC, p.run_id DESC
        LIMIT $5
        """
    /// ``listRunsByPayload`` among the newest `$10` payloads after the cursor only: read in order, no GIN. When
    /// it fills a page, that page is the answer (every other match is older); else the GIN statement is.
    static let listRunsByPayloadAmongRecent = """
        WITH recent AS (
            SELECT p.run_id, p.created_at, p.payload FROM run_payloads p
            WHERE ($3::bigint IS NULL OR (p.created_at, p.run_id) < (to_timestamp($3 / 1000.0), $4::text))
              AND ($6::bigint IS NULL OR p.created_at >= to_timestamp($6 / 1000.0))
              AND ($7::bigint IS NULL OR p.created_at < to_timestamp($7 / 1000.0))
            ORDER BY p.created_at DESC, p.run_id DESC
            LIMIT $10)
        SELECT \(runSummaryColumns) FROM recent p JOIN runs r ON r.run_id = p.run_id
        WHERE p.payload @> $8::jsonb
          AND ($1::text IS NULL OR r.status = $1)
          AND ($2::text IS NULL OR r.playbook_id = $2)
          AND ($9::text IS NULL OR coalesce(r.business_key, r.trigger_event_id) = $9)
        ORDER BY p.created_at DESC, p.run_id DESC
        LIMIT $5
        """
    static let insertRunPayloads = """
        INSERT INTO run_payloads (run_id, created_at, payload)
        SELECT p.run_id, to_timestamp(p.created_ms / 1000.0), p.payload
        FROM jsonb_to_recordset($1::jsonb) AS p(run_id text, created_ms bigint, payload jsonb)
        ON CONFLICT (run_id) DO NOTHING
        """
    /// Active runs of version `$1` after run id `$2`, with their states (a migration's dry run), `$3` a page.
    static let activeRunsOfVersion = """
        SELECT run_id, state::text FROM runs
        WHERE version_id = $1 AND status IN ('running', 'paused', 'incident', 'compensating')
          AND ($2::text IS NULL OR run_id > $2)
        ORDER BY run_id LIMIT $3
        """
    static let countRunsByStatus = "SELECT status, count(*) FROM runs GROUP BY status"
    /// The runs not finished, by status: the partial index runs_unfinished (migration 0019) holds only them.
    static let countUnfinishedRunsByStatus = """
        SELECT status, count(*) FROM runs WHERE status NOT IN \(finishedStatuses) GROUP BY status
        """

    // MARK: tasks

    static let insertTasks = """
        INSERT INTO tasks (task_id, attempt, run_id, step_id, assignee, agent_id, target, status, deadline, warn_at,
                           is_compensation, created_at, updated_at)
        SELECT t.task_id, t.attempt, t.run_id, t.step_id, t.assignee, t.agent_id, t.target, t.status,
               to_timestamp(t.deadline_ms / 1000.0), to_timestamp(t.warn_ms / 1000.0), t.is_compensation,
               to_timestamp(t.created_ms / 1000.0), to_timestamp(t.created_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS t(task_id text, attempt integer, run_id text, step_id text,
             assignee text, agent_id text, target text, status text, deadline_ms bigint, warn_ms bigint,
             is_compensation boolean, created_ms bigint)
        ON CONFLICT (task_id, attempt) DO NOTHING
        """
    static let updateTasks = """
        UPDATE tasks SET status = c.status, output = c.output, error = c.error, updated_at = to_timestamp(c.at_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS c(task_id text, attempt integer, status text, output jsonb, error text,
             at_ms bigint)
        WHERE tasks.task_id = c.task_id AND tasks.attempt = c.attempt
        """
    static let taskColumns = """
        task_id, attempt, run_id, step_id, assignee, agent_id, target, status,
        (extract(epoch FROM deadline) * 1000)::bigint, (extract(epoch FROM warn_at) * 1000)::bigint,
        is_compensation, output::text, error, (extract(epoch FROM created_at) * 1000)::bigint,
        (extract(epoch FROM updated_at) * 1000)::bigint
        """
    /// Open tasks of an assignee label, oldest first: the human inbox.
    static let openTasksByAssignee = """
        SELECT \(taskColumns) FROM tasks WHERE status = 'dispatched' AND assignee = $1
        ORDER BY created_at LIMIT $2
        """
    static let openTasks = "SELECT \(taskColumns) FROM tasks WHERE status = 'dispatched' ORDER BY created_at LIMIT $1"
    /// The inbox, a page at a time: `$1` assignee (NULL: all), oldest first after the cursor `$2` (created
    /// ms), `$3`/`$4` (task id, attempt); `$5` the limit.
    static let openTasksByCreated = """
        SELECT \(taskColumns) FROM tasks
        WHERE status = 'dispatched' AND ($1::text IS NULL OR assignee = $1)
          AND ($2::bigint IS NULL OR (created_at, task_id, attempt) > (to_timestamp($2 / 1000.0), $3::text, $4::integer))
        ORDER BY created_at, task_id, attempt
        LIMIT $5
        """
    /// The inbox by deadline, soonest first, no deadline last; the cursor `$2` is the deadline in ms (NULL
    /// with `$6` true: past every deadline, among the tasks without one).
    static let openTasksByDeadline = """
        SELECT \(taskColumns) FROM tasks
        WHERE status = 'dispatched' AND ($1::text IS NULL OR assignee = $1)
          AND ($3::text IS NULL OR (coalesce(deadline, 'infinity'::timestamptz), task_id, attempt)
               > (CASE WHEN $6 THEN 'infinity'::timestamptz ELSE to_timestamp($2 / 1000.0) END, $3::text, $4::integer))
        ORDER BY coalesce(deadline, 'infinity'::timestamptz), task_id, attempt
        LIMIT $5
        """
    static let tasksOfRun = "SELECT \(taskColumns) FROM tasks WHERE run_id = $1 ORDER BY created_at, task_id, attempt"
    static let latestAttempt = "SELECT \(taskColumns) FROM tasks WHERE task_id = $1 ORDER BY attempt DESC LIMIT 1"
    /// Open tasks whose SLA warning or deadline has passed: the yellow and red lights.
    static let slaLights = """
        SELECT count(*) FILTER (WHERE deadline IS NOT NULL AND deadline <= now()),
               count(*) FILTER (WHERE warn_at IS NOT NULL AND warn_at <= now() AND deadline > now()),
               count(*) FILTER (WHERE deadline IS NULL OR warn_at IS NULL OR warn_at > now())
        FROM tasks WHERE status = 'dispatched'
        """

    // MARK: timers

    static let upsertTimers = """
        INSERT INTO timers (timer_id, run_id, kind, due_at)
        SELECT t.timer_id, t.run_id, t.kind, to_timestamp(t.due_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS t(timer_id text, run_id text, kind text, due_ms bigint)
        ON CONFLICT (timer_id) DO UPDATE SET due_at = excluded.due_at, kind = excluded.kind
        """
    static let deleteTimers = "DELETE FROM timers WHERE timer_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
    /// Claims due timers: deleted in the claiming transaction, skipped by other replicas while it runs.
    static let claimDueTimers = """
        DELETE FROM timers WHERE timer_id IN (
            SELECT timer_id FROM timers WHERE due_at <= now() ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING timer_id, run_id, kind, (extract(epoch FROM due_at) * 1000)::bigint
        """
    static let postponeTimer = "UPDATE timers SET due_at = now() + make_interval(secs => $2::double precision) WHERE timer_id = $1"
    static let nextTimerDue = "SELECT (extract(epoch FROM min(due_at)) * 1000)::bigint FROM timers"
    static let pendingTimerCount = "SELECT count(*) FROM timers"
    static let notifyTimers = "SELECT pg_notify('hms_act_timers', $1)"
    static let timersChannel = "hms_act_timers"

    // MARK: outbox

    static let insertPullTasks = """
        INSERT INTO pull_tasks (task_id, attempt, run_id, assignee, body, created_at)
        SELECT p.task_id, p.attempt, p.run_id, p.assignee, decode(p.body, 'hex'), to_timestamp(p.created_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS p(task_id text, attempt integer, run_id text, assignee text, body text,
             created_ms bigint)
        ON CONFLICT (task_id, attempt) DO NOTHING
        """
    /// Leases up to $2 open pull tasks of assignee $1 whose lease is free or expired, oldest first, to lease
    /// $3 for $4 milliseconds of the database's clock. SKIP LOCKED: two claims at once never take one task.
    static let claimPullTasks = """
        WITH candidates AS (
            SELECT p.task_id, p.attempt FROM pull_tasks p JOIN tasks t USING (task_id, attempt)
            WHERE p.assignee = $1 AND t.status = 'dispatched'
              AND (p.lease_expires_at IS NULL OR p.lease_expires_at <= now())
            ORDER BY p.created_at, p.task_id, p.attempt LIMIT $2
            FOR UPDATE OF p SKIP LOCKED
        )
        UPDATE pull_tasks p SET lease_id = $3, claims = p.claims + 1,
               lease_expires_at = now() + make_interval(secs => $4::double precision / 1000)
        FROM candidates c WHERE p.task_id = c.task_id AND p.attempt = c.attempt
        RETURNING p.task_id, p.attempt, p.run_id, p.assignee, p.body, (extract(epoch FROM p.created_at) * 1000)::bigint,
                  p.lease_id, (extract(epoch FROM p.lease_expires_at) * 1000)::bigint, p.claims
        """
    /// Pull-task rows whose task is no longer open (answered, timed out, cancelled): nobody can claim them.
    static let prunePullTasks = """
        DELETE FROM pull_tasks p USING tasks t
        WHERE p.assignee = $1 AND t.task_id = p.task_id AND t.attempt = p.attempt AND t.status <> 'dispatched'
        """
    /// Moves the expiry of lease $3 on task $1 attempt $2 to $4 milliseconds from now, if it still holds it.
    static let extendPullLease = """
        UPDATE pull_tasks p SET lease_expires_at = now() + make_interval(secs => $4::double precision / 1000)
        FROM tasks t
        WHERE p.task_id = $1 AND p.attempt = $2 AND p.lease_id = $3
          AND t.task_id = p.task_id AND t.attempt = p.attempt AND t.status = 'dispatched'
        RETURNING (extract(epoch FROM p.lease_expires_at) * 1000)::bigint
        """
    /// The lease id on one pull-task attempt.
    static let pullLease = "SELECT lease_id FROM pull_tasks WHERE task_id = $1 AND attempt = $2"
    static let insertOutbox = """
        INSERT INTO outbox (exchange, routing_key, message_id, correlation_id, type, content_type, headers, body,
                            created_at)
        SELECT o.exchange, o.routing_key, o.message_id, o.correlation_id, o.type, o.content_type, o.headers,
               decode(o.body, 'hex'), to_timestamp(o.created_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS o(exchange text, routing_key text, message_id text,
             correlation_id text, type text, content_type text, headers jsonb, body text, created_ms bigint)
        """
    /// Claims the oldest available rows of a share, at most $1 of them and, past the first, no more than $4
    /// bytes of bodies: the rows are locked first (SKIP LOCKED), then cut by their running size, so a burst of
    /// large messages cannot make one claim hold hundreds of megabytes. Locked rows past the cut stay in the
    /// outbox for the next claim of the same share.
    static let claimOutbox = """
        WITH locked AS (
            SELECT outbox_id, octet_length(body) AS bytes FROM outbox
            WHERE available_at <= now()
              AND ($2::int = 1 OR (hashtext(coalesce(correlation_id, '')) & 2147483647) % $2::int = $3::int)
            ORDER BY outbox_id LIMIT $1
            FOR UPDATE SKIP LOCKED
        ), sized AS (
            SELECT outbox_id, sum(bytes) OVER (ORDER BY outbox_id) - bytes AS before FROM locked
        )
        SELECT o.outbox_id, o.exchange, o.routing_key, o.message_id, o.correlation_id, o.type, o.content_type,
               o.headers::text, o.body, (extract(epoch FROM o.created_at) * 1000)::bigint, o.attempts
        FROM outbox o JOIN sized s USING (outbox_id)
        WHERE s.before = 0 OR s.before + octet_length(o.body) <= $4::int8
        ORDER BY o.outbox_id
        """
    /// For the rest of a relay's transaction: reach the outbox through its indexes only (see
    /// ``StoreTransaction/claimOutbox(limit:partition:maxBytes:)``).
    static let queueScanSettings = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"
    static let deleteOutbox = "DELETE FROM outbox WHERE outbox_id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)"
    static let deferOutbox = """
        UPDATE outbox SET attempts = attempts + 1, last_error = $2,
               available_at = now() + make_interval(secs => least(300, power(2, least(attempts, 8)))::double precision)
        WHERE outbox_id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)
        """
    static let outboxLag = """
        SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::double precision FROM outbox
        """
    static let notifyOutbox = "SELECT pg_notify('hms_act_outbox', '')"
    static let outboxChannel = "hms_act_outbox"

    // MARK: inbox

    static let claimInbox = """
        INSERT INTO inbox (message_id) SELECT jsonb_array_elements_text($1::jsonb)
        ON CONFLICT (message_id) DO NOTHING
        RETURNING message_id
        """
    static let releaseInbox = "DELETE FROM inbox WHERE message_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
    static let pruneInbox = "DELETE FROM inbox WHERE received_at < now() - make_interval(hours => $1::integer)"

    // MARK: incidents

    static let insertIncidents = """
        INSERT INTO incidents (kind, run_id, detail, created_at, holds_run, resolution, resolved_by, resolution_note,
                               resolved_at)
        SELECT i.kind, i.run_id, i.detail, to_timestamp(i.created_ms / 1000.0), i.holds_run, i.resolution,
               i.resolved_by, i.resolution_note, to_timestamp(i.resolved_ms / 1000.0)
        FROM jsonb_to_recordset($1::jsonb) AS i(kind text, run_id text, detail jsonb, created_ms bigint,
             holds_run boolean, resolution text, resolved_by text, resolution_note text, resolved_ms bigint,
             ordinal bigint)
        ORDER BY i.ordinal
        """
    /// Resolves the open incidents the runs waited on (before the batch's own new incidents are inserted).
    static let resolveRunIncidents = """
        UPDATE incidents AS i
        SET resolved_at = to_timestamp(r.at_ms / 1000.0), resolution = r.resolution, resolved_by = r.actor,
            resolution_note = r.note
        FROM jsonb_to_recordset($1::jsonb) AS r(run_id text, resolution text, actor text, note text, at_ms bigint)
        WHERE i.run_id = r.run_id AND i.holds_run AND i.resolved_at IS NULL
        """
    /// Resolves one incident that holds no run; returns it when it was open.
    static let resolveIncident = """
        UPDATE incidents SET resolved_at = now(), resolution = 'resolve', resolved_by = $2, resolution_note = $3
        WHERE incident_id = $1 AND resolved_at IS NULL AND NOT holds_run
        RETURNING incident_id
        """
    static let incidentColumns = """
        incident_id, kind, run_id, detail::text, (extract(epoch FROM created_at) * 1000)::bigint, holds_run,
        resolution, resolved_by, resolution_note, (extract(epoch FROM resolved_at) * 1000)::bigint
        """
    /// Incidents newest first: `$1` status (`open`, `resolved`, NULL for all), `$2` run id, `$3` kind,
    /// `$4` the id to page below, `$5` the limit.
    static let listIncidents = """
        SELECT \(incidentColumns)
        FROM incidents
        WHERE ($1::text IS NULL OR ($1 = 'open') = (resolved_at IS NULL))
          AND ($2::text IS NULL OR run_id = $2)
          AND ($3::text IS NULL OR kind = $3)
          AND ($4::bigint IS NULL OR incident_id < $4)
        ORDER BY incident_id DESC
        LIMIT $5
        """
    static let incident = "SELECT \(incidentColumns) FROM incidents WHERE incident_id = $1"

    // MARK: dead_letters

    static let insertDeadLetters = """
        INSERT INTO dead_letters (collected_at, exchange, routing_key, queue, reason, message_id, properties, body)
        SELECT to_timestamp(d.collected_ms / 1000.0), d.exchange, d.routing_key, d.queue, d.reason, d.message_id,
               d.properties, decode(d.body, 'hex')
        FROM jsonb_to_recordset($1::jsonb) AS d(collected_ms bigint, exchange text, routing_key text, queue text,
             reason text, message_id text, properties jsonb, body text, ordinal bigint)
        ORDER BY d.ordinal
        RETURNING dead_letter_id
        """
    static let deadLetterColumns = """
        dead_letter_id, (extract(epoch FROM collected_at) * 1000)::bigint, exchange, routing_key, queue, reason,
        message_id, properties::text, body, status, (extract(epoch FROM handled_at) * 1000)::bigint,
        handled_by, note
        """
    /// Newest first: `$1` status (NULL for all), `$2` the id to page below, `$3` the limit.
    static let listDeadLetters = """
        SELECT \(deadLetterColumns) FROM dead_letters
        WHERE ($1::text IS NULL OR status = $1) AND ($2::bigint IS NULL OR dead_letter_id < $2)
        ORDER BY dead_letter_id DESC LIMIT $3
        """
    static let deadLetter = "SELECT \(deadLetterColumns) FROM dead_letters WHERE dead_letter_id = $1"
    /// Marks a waiting dead letter replayed or discarded; returns it when it was waiting.
    static let handleDeadLetter = """
        UPDATE dead_letters SET status = $2, handled_at = now(), handled_by = $3, note = $4
        WHERE dead_letter_id = $1 AND status = 'dead'
        RETURNING dead_letter_id
        """

    // MARK: bulk_operations

    static let insertBulkOperation = """
        INSERT INTO bulk_operations (action, filter, reason, requested_by, rate_per_second, parameters)
        VALUES ($1, $2::jsonb, $3, $4, $5, $6::jsonb)
        RETURNING operation_id
        """
    static let bulkColumns = """
        operation_id, action, filter::text, reason, requested_by, rate_per_second, state, matched, applied, ignored,
        refused, last_error, (extract(epoch FROM created_at) * 1000)::bigint,
        (extract(epoch FROM updated_at) * 1000)::bigint, (extract(epoch FROM finished_at) * 1000)::bigint,
        parameters::text
        """
    static let bulkOperation = "SELECT \(bulkColumns) FROM bulk_operations WHERE operation_id = $1"
    static let listBulkOperations = """
        SELECT \(bulkColumns) FROM bulk_operations
        WHERE ($1::text IS NULL OR state = $1) ORDER BY operation_id DESC LIMIT $2
        """
    /// Takes the lease of the oldest running operation whose lease lapsed (or is `$1`'s already) for `$2`
    /// seconds.
    static let claimBulkOperation = """
        UPDATE bulk_operations SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::double precision)
        WHERE operation_id = (
            SELECT operation_id FROM bulk_operations
            WHERE state = 'running' AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $1)
            ORDER BY operation_id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING \(bulkColumns), cursor_created_at::text, cursor_run_id
        """
    /// The next page of runs of operation `$1` (newest first, along `runs_by_created`), after the cursor
    /// `$7`/`$8`: `$2` status, `$3` playbook, `$4` key, `$5`/`$6` created range (ms), `$9` the limit. The first
    /// page starts at the newest run; runs created after it are newer than the cursor and never visited.
    static let bulkPage = """
        SELECT run_id, created_at::text FROM runs
        WHERE $1::bigint IS NOT NULL
          AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR playbook_id = $3)
          AND ($4::text IS NULL OR coalesce(business_key, trigger_event_id) = $4)
          AND ($5::bigint IS NULL OR created_at >= to_timestamp($5 / 1000.0))
          AND ($6::bigint IS NULL OR created_at < to_timestamp($6 / 1000.0))
          AND ($7::timestamptz IS NULL OR created_at < $7::timestamptz
               OR (created_at = $7::timestamptz AND run_id > $8))
          AND ($10::bigint IS NULL OR version_id = $10)
        ORDER BY created_at DESC, run_id
        LIMIT $9
        """
    /// Records a page done while `$10` holds the lease: the cursor, the counts, done (`$8`), a longer lease.
    static let recordBulkProgress = """
        UPDATE bulk_operations
        SET cursor_created_at = coalesce($2::timestamptz, cursor_created_at), cursor_run_id = coalesce($3, cursor_run_id),
            matched = matched + $4, applied = applied + $5, ignored = ignored + $6, refused = refused + $7,
            state = CASE WHEN $8 THEN 'done' ELSE state END,
            finished_at = CASE WHEN $8 THEN now() ELSE finished_at END,
            lease_until = now() + make_interval(secs => $9::double precision), last_error = NULL, updated_at = now()
        WHERE operation_id = $1 AND lease_owner = $10 AND state = 'running'
        RETURNING operation_id
        """
    static let failBulkPage = """
        UPDATE bulk_operations SET last_error = $2, updated_at = now() WHERE operation_id = $1
        """
    static let stopBulkOperation = """
        UPDATE bulk_operations SET state = 'stopped', finished_at = now(), updated_at = now(),
            last_error = 'stopped by ' || $2
        WHERE operation_id = $1 AND state = 'running'
        RETURNING operation_id
        """

    // MARK: audit_log

    /// `started_ms` is the run's created_at, the partition key (migration 0011); a batch always carries the run
    /// with its entries, and the lookup is only for one that does not. Each run's newest entry also marks the run
    /// in audit_pending (migration 0019), for the next checkpoint; the update locks the mark, so a checkpoint
    /// clearing it waits for this transaction and then sees the newer sequence.
    static let insertAudit = """
        WITH appended AS (
            INSERT INTO audit_log (run_id, seq, at, kind, actor, data, prev_hash, hash, run_started)
            SELECT a.run_id, a.seq, to_timestamp(a.at_ms / 1000.0), a.kind, a.actor, a.data, decode(a.prev, 'hex'),
                   decode(a.hash, 'hex'),
                   COALESCE(to_timestamp(a.started_ms / 1000.0), (SELECT r.created_at FROM runs r WHERE r.run_id = a.run_id),
                            to_timestamp(a.at_ms / 1000.0))
            FROM jsonb_to_recordset($1::jsonb) AS a(run_id text, seq bigint, at_ms bigint, kind text, actor text,
                 data jsonb, prev text, hash text, started_ms bigint)
            RETURNING run_id, seq
        )
        INSERT INTO audit_pending (run_id, seq)
        SELECT run_id, max(seq) FROM appended GROUP BY run_id
        ON CONFLICT (run_id) DO UPDATE SET seq = greatest(audit_pending.seq, excluded.seq)
        """
    static let auditColumns = """
        run_id, seq, (extract(epoch FROM at) * 1000)::bigint, kind, actor, data::text, prev_hash, hash
        """
    static let auditOfRun = "SELECT \(auditColumns) FROM audit_log WHERE run_id = $1 ORDER BY seq"
    /// Every entry, run by run, in physical sequence order; `verify` walks it in pages.
    static let auditPage = """
        SELECT \(auditColumns) FROM audit_log
        WHERE (run_id, seq) > ($1, $2)
        ORDER BY run_id, seq LIMIT $3
        """
    /// Heads of runs whose chains moved past the sequence their last checkpoint signed: by sequence, not by
    /// time, so a commit racing a checkpoint is never skipped (migration 0004). Only the runs marked in
    /// audit_pending can have moved (migration 0019), so the cost follows what moved, not the history.
    static let runHeadsUncheckpointed = """
        SELECT r.run_id, r.audit_seq, r.audit_head FROM audit_pending p
        JOIN runs r ON r.run_id = p.run_id
        LEFT JOIN audit_checkpointed c ON c.run_id = r.run_id
        WHERE r.audit_seq > COALESCE(c.seq, 0)
        ORDER BY r.run_id
        """
    /// Records the heads a checkpoint signed, and which checkpoint signed them; $1 is its heads as JSON, $2 its id.
    static let markCheckpointed = """
        INSERT INTO audit_checkpointed (run_id, seq, checkpoint_id)
        SELECT h.run, h.seq, $2 FROM jsonb_to_recordset($1::jsonb) AS h(run text, seq bigint)
        ON CONFLICT (run_id) DO UPDATE SET seq = excluded.seq, checkpoint_id = excluded.checkpoint_id
        WHERE excluded.seq > audit_checkpointed.seq
        """
    /// Clears the marks that the checkpoints so far have signed up to (after ``markCheckpointed``, in its
    /// transaction). A mark a concurrent batch moved on is locked by it: this waits, rechecks the mark's new
    /// sequence against the signed one, and keeps it.
    static let clearCheckpointedMarks = """
        DELETE FROM audit_pending p USING audit_checkpointed c WHERE c.run_id = p.run_id AND p.seq <= c.seq
        """

    // MARK: playbook version controls (migration 0012; Store+PlaybookControls.swift)

    /// $1 a playbook id, or null for all.
    static let playbookControls = """
        SELECT version_id, playbook_id, state, pinned, changed_by, (extract(epoch FROM changed_at) * 1000)::bigint, reason
        FROM playbook_version_controls WHERE $1::text IS NULL OR playbook_id = $1 ORDER BY version_id
        """
    static let lockPlaybookControls = "SELECT pg_advisory_xact_lock(hashtext('hms-act playbook controls ' || $1)::bigint)"
    static let versionIDsOfPlaybook = "SELECT version_id FROM playbook_versions WHERE playbook_id = $1 ORDER BY version_id"
    static let setVersionState = """
        INSERT INTO playbook_version_controls (version_id, playbook_id, state, changed_by, reason)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (version_id) DO UPDATE SET state = excluded.state, changed_by = excluded.changed_by,
            changed_at = now(), reason = excluded.reason
        """
    static let clearPin = """
        UPDATE playbook_version_controls SET pinned = false, changed_by = $2, changed_at = now(), reason = $3
        WHERE playbook_id = $1 AND pinned
        """
    static let setPin = """
        INSERT INTO playbook_version_controls (version_id, playbook_id, pinned, changed_by, reason)
        VALUES ($1, $2, true, $3, $4)
        ON CONFLICT (version_id) DO UPDATE SET pinned = true, changed_by = excluded.changed_by, changed_at = now(),
            reason = excluded.reason
        """
    static let logPlaybookControl = """
        INSERT INTO playbook_control_log (playbook_id, version_id, action, actor, reason) VALUES ($1, $2, $3, $4, $5)
        """
    static let playbookControlLog = """
        SELECT playbook_id, version_id, action, actor, reason, (extract(epoch FROM at) * 1000)::bigint
        FROM playbook_control_log WHERE playbook_id = $1 ORDER BY change_id DESC LIMIT $2
        """

    // MARK: retention (migration 0011; Store+Retention.swift)

    static let finishedStatuses = "('completed', 'failed', 'cancelled')"
    /// $1 finished before (ms).
    static let retentionBacklog = """
        SELECT count(*)::bigint, count(*) FILTER (WHERE c.seq IS DISTINCT FROM r.audit_seq OR c.checkpoint_id IS NULL)::bigint
        FROM runs r LEFT JOIN audit_checkpointed c USING (run_id)
        WHERE r.finished_at IS NOT NULL AND r.finished_at < to_timestamp($1 / 1000.0) AND r.status IN \(finishedStatuses)
        """
    /// $1 finished before (ms), $2/$3 the cursor (finished_at as PostgreSQL's text, exact to the microsecond;
    /// run id), $4 the page size.
    static let retentionCandidates = """
        SELECT r.run_id, (extract(epoch FROM r.created_at) * 1000)::bigint,
               (extract(epoch FROM r.finished_at) * 1000)::bigint, r.audit_seq, r.audit_head, c.checkpoint_id,
               r.finished_at::text
        FROM runs r
        JOIN audit_checkpointed c ON c.run_id = r.run_id AND c.seq = r.audit_seq AND c.checkpoint_id IS NOT NULL
        WHERE r.finished_at IS NOT NULL AND r.finished_at < to_timestamp($1 / 1000.0) AND r.status IN \(finishedStatuses)
          AND (r.finished_at, r.run_id) > ($2::timestamptz, $3)
        ORDER BY r.finished_at, r.run_id
        LIMIT $4
        """
    static let archiveRuns = """
        SELECT run_id, row_to_json(r)::text FROM runs r WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        """
    static let archiveTasks = """
        SELECT run_id, row_to_json(t)::text FROM tasks t WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        ORDER BY run_id, created_at, task_id, attempt
        """
    static let archiveIncidents = """
        SELECT run_id, row_to_json(i)::text FROM incidents i WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        ORDER BY run_id, incident_id
        """
    static let archiveAudit = """
        SELECT \(auditColumns) FROM audit_log WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        ORDER BY run_id, seq
        """
    static let archiveCheckpoints = """
        SELECT checkpoint_id, (extract(epoch FROM at) * 1000)::bigint, key_id, heads::text, signature
        FROM audit_checkpoints WHERE checkpoint_id IN (SELECT jsonb_array_elements_text($1::jsonb)::bigint)
        ORDER BY checkpoint_id
        """
    static let archivedHeads = """
        SELECT run_id, audit_seq, audit_head FROM archived_runs WHERE run_id IN (SELECT jsonb_array_elements_text($1::jsonb))
        """
    static let insertRetentionArchive = """
        INSERT INTO retention_archives (file_name, sha256, runs, audit_entries, finished_before)
        VALUES ($1, $2, $3, $4, to_timestamp($5 / 1000.0))
        RETURNING archive_id
        """
    /// $1 the archived runs with the audit_seq they were archived at, $2 the archive: removes those still at that
    /// sequence (tasks, timers and payloads go with them) and records them in archived_runs.
    static let removeArchivedRuns = """
        WITH removed AS (
            DELETE FROM runs r USING jsonb_to_recordset($1::jsonb) AS e(run_id text, audit_seq bigint)
            WHERE r.run_id = e.run_id AND r.audit_seq = e.audit_seq
            RETURNING r.run_id, r.playbook_id, r.status, r.created_at, r.finished_at, r.audit_seq, r.audit_head
        )
        INSERT INTO archived_runs (run_id, archive_id, playbook_id, status, run_started, finished_at, audit_seq, audit_head)
        SELECT run_id, $2, playbook_id, status, created_at, finished_at, audit_seq, audit_head FROM removed
        ON CONFLICT (run_id) DO UPDATE SET archive_id = excluded.archive_id, audit_seq = excluded.audit_seq,
            audit_head = excluded.audit_head, archived_at = now()
        RETURNING run_id
        """
    static let removeArchivedLeftovers = """
        WITH ids AS (SELECT jsonb_array_elements_text($1::jsonb) AS run_id),
             incidents_removed AS (DELETE FROM incidents WHERE run_id IN (SELECT run_id FROM ids)),
             pull_removed AS (DELETE FROM pull_tasks WHERE run_id IN (SELECT run_id FROM ids)),
             marks_removed AS (DELETE FROM audit_pending WHERE run_id IN (SELECT run_id FROM ids))
        DELETE FROM audit_checkpointed WHERE run_id IN (SELECT run_id FROM ids)
        """
    /// Monthly partitions by name (audit_log_YYYY_MM), with their bounds, live runs and size.
    static let auditPartitions = """
        SELECT p.name, (extract(epoch FROM p.lower) * 1000)::bigint, (extract(epoch FROM p.upper) * 1000)::bigint,
               (SELECT count(*) FROM runs r WHERE r.created_at >= p.lower AND r.created_at < p.upper)::bigint,
               pg_total_relation_size(p.oid)
        FROM (
            SELECT c.relname::text AS name, c.oid,
                   (to_timestamp(substr(c.relname, 11), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC') AS lower,
                   ((to_timestamp(substr(c.relname, 11), 'YYYY_MM')::timestamp + interval '1 month') AT TIME ZONE 'UTC') AS upper
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'audit_log'::regclass AND c.relname ~ '^audit_log_[0-9]{4}_[0-9]{2}$'
        ) p
        ORDER BY p.lower
        """
    static let liveRunsStartedBetween = """
        SELECT count(*)::bigint FROM runs WHERE created_at >= to_timestamp($1 / 1000.0) AND created_at < to_timestamp($2 / 1000.0)
        """
    /// $1 months ahead of this one.
    static let ensureAuditPartitions = """
        SELECT hms_act_ensure_audit_partitions(now(), now() + make_interval(months => $1::int))
        """

    // MARK: audit_checkpoints

    static let insertCheckpoint = """
        INSERT INTO audit_checkpoints (at, key_id, heads, heads_digest, signature, published)
        VALUES (to_timestamp($1 / 1000.0), $2, $3::jsonb, decode($4, 'hex'), decode($5, 'hex'), true)
        RETURNING checkpoint_id
        """
    static let checkpoints = """
        SELECT checkpoint_id, (extract(epoch FROM at) * 1000)::bigint, key_id, heads::text, signature
        FROM audit_checkpoints ORDER BY checkpoint_id
        """

    // MARK: health

    static let ping = "SELECT 1"
    static let synchronousCommit = "SELECT current_setting('synchronous_commit')"
    static let databaseTime = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
}
