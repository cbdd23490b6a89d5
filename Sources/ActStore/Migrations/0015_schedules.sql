-- hms-act schema, version 15: playbook schedules (`schedules:` in a playbook, docs/playbooks.md "Schedules").
--
-- One row per schedule of every playbook's current version, kept in step with the catalog by every replica.
-- `definition` is the schedule as written (to notice a change), `state` what ScheduleClock keeps (next fire,
-- last run, held fire, counts). The scheduler on each replica claims rows whose `due_at` has come
-- (FOR UPDATE SKIP LOCKED), starts their runs and writes the new state in one transaction, so each fire is
-- handled once across replicas; the run of a fire has an id derived from the schedule and the fire, so even
-- a repeat could not start it twice.
CREATE TABLE schedules (
    playbook_id text        NOT NULL,
    schedule_id text        NOT NULL,
    definition  jsonb       NOT NULL,
    state       jsonb       NOT NULL,
    due_at      timestamptz,
    paused      boolean     NOT NULL DEFAULT false,
    paused_by   text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playbook_id, schedule_id)
);
CREATE INDEX schedules_due ON schedules (due_at) WHERE NOT paused;
