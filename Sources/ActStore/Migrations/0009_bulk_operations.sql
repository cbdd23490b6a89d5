-- hms-act schema, version 9: bulk operations.
-- An operator's command over every run a filter matches that existed when its first page was taken (cancel,
-- pause, resume, retry, migrate to another playbook version: `parameters`). Any replica works on it while it holds the lease; it walks the runs newest first along the
-- runs_by_created index and keeps its position and counts here after each page, so after a restart another
-- replica goes on from there. A page done twice is harmless: each run's command has its own inbox key.
CREATE TABLE bulk_operations (
    operation_id      bigserial   PRIMARY KEY,
    action            text        NOT NULL,
    filter            jsonb       NOT NULL,
    parameters        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    reason            text,
    requested_by      text        NOT NULL,
    rate_per_second   integer     NOT NULL CHECK (rate_per_second > 0),
    state             text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'stopped')),
    cursor_created_at timestamptz,
    cursor_run_id     text,
    matched           bigint      NOT NULL DEFAULT 0,
    applied           bigint      NOT NULL DEFAULT 0,
    ignored           bigint      NOT NULL DEFAULT 0,
    refused           bigint      NOT NULL DEFAULT 0,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    lease_owner       text,
    lease_until       timestamptz
);
CREATE INDEX bulk_operations_running ON bulk_operations (operation_id) WHERE state = 'running';
