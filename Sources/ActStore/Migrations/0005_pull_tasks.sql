-- hms-act schema, version 5: tasks of pull agents (`delivery: pull`), claimed over HTTP with a lease.
-- A pulled task is never published, so it has no outbox row: its message (the same JSON a pushed worker
-- receives) waits here. A claim takes the oldest open one whose lease is free or expired
-- (FOR UPDATE SKIP LOCKED, so two pollers never get the same task) and stamps it with a new lease id and
-- expiry from the database clock; completing with another lease id is refused (409).
CREATE TABLE pull_tasks (
    task_id          text        NOT NULL,
    attempt          integer     NOT NULL,
    run_id           text        NOT NULL,
    assignee         text        NOT NULL,                -- the pull agent's id: ai.fraud-labeler
    body             bytea       NOT NULL,                -- the hms.task message
    lease_id         text,
    lease_expires_at timestamptz,
    claims           integer     NOT NULL DEFAULT 0,     -- how many times a lease was granted
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (task_id, attempt),
    FOREIGN KEY (task_id, attempt) REFERENCES tasks (task_id, attempt) ON DELETE CASCADE
);
CREATE INDEX pull_tasks_by_assignee ON pull_tasks (assignee, created_at);
