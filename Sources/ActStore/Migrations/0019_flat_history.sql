-- hms-act schema, version 19: what runs every second or every minute reads only what moved, so its cost stays
-- flat as finished runs pile up (issue 21; bench/README.md, "Flat with history").
--
-- Runs whose audit chain moved since the checkpoint that last signed them. Written in the statement that appends
-- the entries (StoreSQL.insertAudit) and cleared by the checkpoint that signs them, so a checkpoint reads these
-- rows instead of joining every run ever started with audit_checkpointed (at 200,000 runs that join took up to
-- 344 ms a minute, growing with every run). `seq` is the newest entry the row stands for: the checkpoint clears a
-- row only up to the sequence it signed, so an append racing the checkpoint keeps its row.
CREATE TABLE audit_pending (
    run_id text   PRIMARY KEY,
    seq    bigint NOT NULL
);
-- Each row lives about a minute (one checkpoint): vacuum as soon as a few thousand are dead.
ALTER TABLE audit_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 2000);
INSERT INTO audit_pending (run_id, seq)
SELECT r.run_id, r.audit_seq FROM runs r LEFT JOIN audit_checkpointed c USING (run_id)
WHERE r.audit_seq > COALESCE(c.seq, 0);

-- The hms_act_runs gauge, read every second, counts the runs not finished; finished ones are counted by
-- hms_act_runs_finished_total. Before, it counted every run by status: a scan of all runs each second
-- (56 ms a call at 200,000 runs).
CREATE INDEX runs_unfinished ON runs (status) WHERE status NOT IN ('completed', 'failed', 'cancelled');

-- The outbox and the timers are queues: every row is inserted, then deleted within seconds, so at 1,000 step
-- transitions/s the outbox leaves ~4,000 dead rows a second. With the default autovacuum settings (a fifth of the
-- table, throttled) the outbox heap grew to 20,000 pages (158 MB) for under a thousand live rows in a 50,000-run
-- benchmark, and every claim read all of it. Vacuum them after a few thousand dead rows, unthrottled; how soon
-- autovacuum looks is the server's autovacuum_naptime (docs/operations.md, "PostgreSQL settings").
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE timers SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0);
ALTER TABLE audit_pending SET (autovacuum_vacuum_cost_delay = 0);
