-- hms-act schema, version 2: the size of each run's state, so a batch can bound how many bytes of run
-- state it loads (StoreSQL.lockRunsWithin). Rows written before this migration count as 0 until their
-- run next moves.
ALTER TABLE runs ADD COLUMN state_bytes integer NOT NULL DEFAULT 0;
