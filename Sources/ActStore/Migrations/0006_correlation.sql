-- hms-act schema, version 6: finding a run by what its callers know.
-- A signal may name a business key instead of a run id: the playbook's `key:` evaluated on the trigger's
-- payload when the run starts (`business_key`), else the trigger event's id. A callback may name the run's
-- trace id. Both are looked up among few rows per value, so each has an index; no existing row is rewritten
-- (a run without business_key is found by its event id).
ALTER TABLE runs ADD COLUMN business_key text;
CREATE INDEX runs_by_correlation_key ON runs ((coalesce(business_key, trigger_event_id)));
CREATE INDEX runs_by_trace_id ON runs (trace_id);
