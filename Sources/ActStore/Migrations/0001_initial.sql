-- hms-act schema, version 1.
--
-- Every table lives in the connection's current schema (search_path), so tests can give each suite a
-- schema of its own. All times are timestamptz written from the database clock (now()) or from the
-- engine's instants; claims compare against now() so that replicas agree on what is due.

-- Registered playbook versions. A version is immutable: the same id with the same checksum is the same
-- version; new source under the same id is a new version.
CREATE TABLE playbook_versions (
    version_id    bigserial   PRIMARY KEY,
    playbook_id   text        NOT NULL,
    checksum      text        NOT NULL,            -- SHA-256 of the source, lower-case hex
    source        text        NOT NULL,
    model         jsonb       NOT NULL,            -- the normalised model, as the engine reads it
    triggers      text[]      NOT NULL DEFAULT '{}',
    registered_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (playbook_id, checksum)
);
CREATE INDEX playbook_versions_latest ON playbook_versions (playbook_id, version_id DESC);

-- One row per run: the engine's state as JSON plus the columns that queries filter on. Rows are locked
-- (SELECT … FOR UPDATE) while a batch applies events to them, so replicas never interleave on a run.
CREATE TABLE runs (
    run_id           text        PRIMARY KEY,
    playbook_id      text        NOT NULL,
    version_id       bigint      NOT NULL REFERENCES playbook_versions (version_id),
    status           text        NOT NULL,
    state            jsonb       NOT NULL,
    trace_id         text        NOT NULL,
    trigger_event_id text,
    trigger_type     text,
    audit_seq        bigint      NOT NULL DEFAULT 0,       -- head of this run's audit chain
    audit_head       bytea       NOT NULL DEFAULT '\x'::bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX runs_by_status ON runs (status, created_at DESC);
CREATE INDEX runs_by_playbook ON runs (playbook_id, created_at DESC);
CREATE INDEX runs_by_created ON runs (created_at DESC, run_id);

-- One row per dispatched attempt of a task: the human inbox and the SLA lights read this table.
CREATE TABLE tasks (
    task_id        text        NOT NULL,
    attempt        integer     NOT NULL,
    run_id         text        NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step_id        text        NOT NULL,
    assignee       text        NOT NULL,               -- canonical label: human.investigator
    agent_id       text,
    target         text        NOT NULL,               -- routing key or queue the task went to
    status         text        NOT NULL,               -- dispatched, completed, failed, timeout, cancelled
    deadline       timestamptz,
    warn_at        timestamptz,
    is_compensation boolean    NOT NULL DEFAULT false,
    output         jsonb,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, attempt)
);
CREATE INDEX tasks_open_by_assignee ON tasks (assignee, created_at) WHERE status = 'dispatched';
CREATE INDEX tasks_by_run ON tasks (run_id);

-- Durable timers: SLA warnings and breaches, retry backoff, waits. Claimed with FOR UPDATE SKIP LOCKED
-- and deleted in the transaction that applies them, so each fires once across all replicas.
CREATE TABLE timers (
    timer_id   text        PRIMARY KEY,
    run_id     text        NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX timers_due ON timers (due_at);

-- Transactional outbox: messages committed with the state change that caused them. The relay claims
-- rows (SKIP LOCKED), publishes with confirms and deletes a row only after its confirm.
CREATE TABLE outbox (
    outbox_id      bigserial   PRIMARY KEY,
    exchange       text        NOT NULL,
    routing_key    text        NOT NULL,
    message_id     text        NOT NULL,
    correlation_id text,
    type           text        NOT NULL,
    content_type   text        NOT NULL DEFAULT 'application/json',
    headers        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body           bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    available_at   timestamptz NOT NULL DEFAULT now(),
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text
);
CREATE INDEX outbox_available ON outbox (available_at, outbox_id);

-- Inbox: ids of messages already applied, so a redelivered trigger, result, signal or callback
-- changes nothing. Rows older than the retention are pruned.
CREATE TABLE inbox (
    message_id  text        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_received ON inbox (received_at);

-- Incidents an operator must see: unroutable tasks, poison messages, failed compensations.
CREATE TABLE incidents (
    incident_id bigserial   PRIMARY KEY,
    kind        text        NOT NULL,
    run_id      text,
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE INDEX incidents_open ON incidents (created_at) WHERE resolved_at IS NULL;

-- Audit trail: append-only, hash-chained per run. Each entry's hash is
-- SHA-256(previous hash || canonical encoding of the entry); see AuditChain.swift.
CREATE TABLE audit_log (
    run_id    text        NOT NULL,
    seq       bigint      NOT NULL,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    actor     text        NOT NULL DEFAULT '',
    data      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    prev_hash bytea       NOT NULL,
    hash      bytea       NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Keyed checkpoints over all run heads: an HMAC the database cannot forge, published to the governance
-- exchange as an outside witness.
CREATE TABLE audit_checkpoints (
    checkpoint_id bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    key_id        text        NOT NULL,
    heads         jsonb       NOT NULL,            -- [{run, seq, hash}] sorted by run
    heads_digest  bytea       NOT NULL,
    signature     bytea       NOT NULL,
    published     boolean     NOT NULL DEFAULT false
);

CREATE FUNCTION hms_act_refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION hms_act_refuse_audit_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hms_act_refuse_audit_change();
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE DELETE OR TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION hms_act_refuse_audit_change();
