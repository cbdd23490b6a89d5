-- hms-act schema, version 10: finding runs and open tasks among millions.
-- A run's trigger payload never changes, so it is kept once more in a table that is only ever inserted
-- into, with a GIN index for containment (`payload @> '{"address": "123 Oak St"}'`): the runs table, updated
-- on every transition, carries no such index. Open tasks are listed oldest first or by deadline (no
-- deadline last) along partial indexes that hold only the open ones.
CREATE TABLE run_payloads (
    run_id     text        PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,   -- the run's: matches are ordered here before a page of runs is read
    payload    jsonb       NOT NULL
);
INSERT INTO run_payloads (run_id, created_at, payload)
SELECT run_id, created_at, coalesce(state -> 'payload', 'null'::jsonb) FROM runs;
CREATE INDEX run_payloads_by_content ON run_payloads USING gin (payload jsonb_path_ops);
-- A value many runs share is found faster by reading the newest payloads in order than through the GIN index.
CREATE INDEX run_payloads_by_created ON run_payloads (created_at DESC, run_id DESC);
CREATE INDEX tasks_open_by_created ON tasks (created_at, task_id, attempt) WHERE status = 'dispatched';
CREATE INDEX tasks_open_by_deadline ON tasks ((coalesce(deadline, 'infinity'::timestamptz)), task_id, attempt)
    WHERE status = 'dispatched';
CREATE INDEX tasks_open_by_assignee_deadline
    ON tasks (assignee, (coalesce(deadline, 'infinity'::timestamptz)), task_id, attempt) WHERE status = 'dispatched';
