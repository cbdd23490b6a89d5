-- hms-act schema, version 7: incidents an operator answers.
-- A run incident (a failed step or compensation under `on_failure: incident`) holds its run until it is
-- answered with retry, skip or fail; every incident records who resolved it, how and why. Incidents of a
-- run are listed by run id.
ALTER TABLE incidents
    ADD COLUMN holds_run       boolean NOT NULL DEFAULT false,
    ADD COLUMN resolution      text,
    ADD COLUMN resolved_by     text,
    ADD COLUMN resolution_note text;
CREATE INDEX incidents_by_run ON incidents (run_id, incident_id) WHERE run_id IS NOT NULL;
