-- hms-act schema, version 16: concurrency keys (`concurrency:` on a playbook, docs/playbooks.md "Concurrency").
--
-- One row per run that holds (`holding`) or waits for a slot of its key. A transaction that changes a key's
-- rows first takes a transaction-scoped advisory lock on the key, so replicas never hand out one slot twice;
-- waiting runs get a freed slot by priority, then in the order they arrived (`seq`). Rows go with their run (retention).
CREATE TABLE concurrency_slots (
    scope   text        NOT NULL,
    key     text        NOT NULL,
    run_id  text        NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    holding boolean     NOT NULL,
    -- The run's priority (0…9): waiting runs get a freed slot by priority, then in arrival order.
    priority integer    NOT NULL DEFAULT 0,
    seq     bigserial   NOT NULL,
    since   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key, run_id)
);
CREATE INDEX concurrency_slots_queue ON concurrency_slots (scope, key, holding, priority DESC, seq);
