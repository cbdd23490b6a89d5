-- hms-act schema, version 11: retention and archive (docs/operations.md, "Retention and archive").
--
-- audit_log is partitioned by the month its run started (run_started, the run's created_at), so a run's whole
-- chain lives in one partition. `hms-act retention run` archives finished runs to a verifiable file and
-- removes their rows; the audit rows, which no role may delete row by row, leave with their month's partition
-- once no run started in that month is left. What remains is whole chains, so it still verifies.

ALTER TABLE audit_log RENAME TO audit_log_unpartitioned;
ALTER INDEX audit_log_pkey RENAME TO audit_log_unpartitioned_pkey;

CREATE TABLE audit_log (
    run_id      text        NOT NULL,
    seq         bigint      NOT NULL,
    at          timestamptz NOT NULL,
    kind        text        NOT NULL,
    actor       text        NOT NULL DEFAULT '',
    data        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea       NOT NULL,
    hash        bytea       NOT NULL,
    run_started timestamptz NOT NULL,                  -- the partition key: the run's created_at
    PRIMARY KEY (run_id, seq, run_started)
) PARTITION BY RANGE (run_started);

-- Catches a row whose month has no partition yet (housekeeping creates them two months ahead), so an insert
-- never fails for want of one. Retention never drops it; a run archived from it keeps its audit rows.
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

-- Creates the monthly partitions audit_log_YYYY_MM (UTC months) from `first` through `last` that do not exist.
-- Returns how many it created. A month whose rows already sit in the default partition is skipped (PostgreSQL
-- refuses that partition): those runs keep their rows in audit_log_default.
CREATE FUNCTION hms_act_ensure_audit_partitions(first timestamptz, last timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month   timestamp := date_trunc('month', first AT TIME ZONE 'UTC');
    created integer := 0;
    name    text;
BEGIN
    -- Replicas maintain partitions concurrently; one at a time per database.
    PERFORM pg_advisory_xact_lock(7301150011);
    WHILE month <= last AT TIME ZONE 'UTC' LOOP
        name := 'audit_log_' || to_char(month, 'YYYY_MM');
        IF to_regclass(quote_ident(name)) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                    name, (month AT TIME ZONE 'UTC'), ((month + interval '1 month') AT TIME ZONE 'UTC'));
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'audit partition % not created: the default partition holds rows of that month', name;
            END;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END;
$$;

SELECT hms_act_ensure_audit_partitions(
    LEAST(now(), (SELECT min(created_at) FROM runs), (SELECT min(at) FROM audit_log_unpartitioned)),
    now() + interval '2 months');

INSERT INTO audit_log (run_id, seq, at, kind, actor, data, prev_hash, hash, run_started)
SELECT a.run_id, a.seq, a.at, a.kind, a.actor, a.data, a.prev_hash, a.hash,
       COALESCE(r.created_at, min(a.at) OVER (PARTITION BY a.run_id))
FROM audit_log_unpartitioned a LEFT JOIN runs r USING (run_id);

DROP TABLE audit_log_unpartitioned;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION hms_act_refuse_audit_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION hms_act_refuse_audit_change();

-- Which checkpoint last signed each run's head: the archive carries that checkpoint, so an archived chain is
-- anchored by a signature without the database. Filled for the checkpoints already written.
ALTER TABLE audit_checkpointed ADD COLUMN checkpoint_id bigint;
UPDATE audit_checkpointed c SET checkpoint_id = signed.checkpoint_id
FROM (
    SELECT h ->> 'run' AS run_id, (h ->> 'seq')::bigint AS seq, max(k.checkpoint_id) AS checkpoint_id
    FROM audit_checkpoints k, jsonb_array_elements(k.heads) AS h
    GROUP BY 1, 2
) signed
WHERE signed.run_id = c.run_id AND signed.seq = c.seq;

-- One row per archive file written by `hms-act retention run`, and one per run it removed: how `audit verify`
-- tells a run that was archived from one that was deleted, and which file holds it.
CREATE TABLE retention_archives (
    archive_id      bigserial   PRIMARY KEY,
    file_name       text        NOT NULL,
    sha256          text        NOT NULL,            -- of the whole file, lower-case hex
    runs            integer     NOT NULL,
    audit_entries   bigint      NOT NULL,
    finished_before timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE archived_runs (
    run_id      text        PRIMARY KEY,
    archive_id  bigint      NOT NULL REFERENCES retention_archives (archive_id),
    playbook_id text        NOT NULL,
    status      text        NOT NULL,
    run_started timestamptz NOT NULL,
    finished_at timestamptz,
    audit_seq   bigint      NOT NULL,
    audit_head  bytea       NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- Finished runs by when they finished: what retention looks for.
CREATE INDEX runs_finished ON runs (finished_at, run_id) WHERE finished_at IS NOT NULL;
