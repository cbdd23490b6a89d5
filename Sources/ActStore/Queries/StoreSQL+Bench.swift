/// The statements only the benchmark (`hms-act-bench`) runs: it fills the schema with synthetic load and
/// drops it afterwards, so its schema knowledge stays here, beside the migrations, and not in the benchmark.
extension StoreSQL {
    // MARK: runs and timers (benchmark load)

    /// One run of playbook $1 that has timers, and how many it has.
    static let runsWithStatus = "SELECT count(*) FROM runs WHERE playbook_id = $1 AND status = $2"
    static let runWithTimers = """
        SELECT r.run_id, count(t.*)::int8 FROM runs r JOIN timers t USING (run_id)
        WHERE r.playbook_id = $1 GROUP BY r.run_id LIMIT 1
        """
    /// $2 copies of run $1, each with every column copied except its ids: run id and trigger event id are
    /// $3 followed by the copy's number. `to_jsonb`/`jsonb_populate_record` keep this right as columns are added.
    static let copyRun = """
        INSERT INTO runs SELECT (jsonb_populate_record(NULL::runs, to_jsonb(r) || jsonb_build_object(
            'run_id', $3 || g, 'trigger_event_id', $3 || g))).*
        FROM runs r, generate_series(1, $2::int) g WHERE r.run_id = $1
        """
    /// The timers of run $1 for each of the $2 copies made by ``copyRun``, due an hour later (plus one
    /// millisecond per copy, so they never fall due together) so they stay pending through a benchmark.
    static let copyRunTimers = """
        INSERT INTO timers (timer_id, run_id, kind, due_at)
        SELECT t.timer_id || '/copy_' || g, $3 || g, t.kind, t.due_at + interval '1 hour' + g * interval '1 millisecond'
        FROM timers t, generate_series(1, $2::int) g WHERE t.run_id = $1
        """
    /// Fresh planner statistics after a bulk load, so the timer scanner's plans see the tables' real size.
    static let analyzeRunsAndTimers = "ANALYZE runs; ANALYZE timers"

    // MARK: history (a schema as it looks after many completed runs)

    /// Copies $2 … $3 of completed run $1: every column copied but the ids (run, trigger event and trace ids
    /// from $4 and the copy's number) and the times, moved back 10 ms per copy, as if the history had arrived at
    /// 100 runs/s up to now. The same statement shape as ``copyRun``.
    static let copyCompletedRun = """
        INSERT INTO runs SELECT (jsonb_populate_record(NULL::runs, to_jsonb(r) || jsonb_build_object(
            'run_id', $4 || g, 'trigger_event_id', $4 || g, 'trace_id', md5($4 || g),
            'created_at', r.created_at - g * interval '10 milliseconds',
            'updated_at', r.updated_at - g * interval '10 milliseconds',
            'finished_at', r.finished_at - g * interval '10 milliseconds'))).*
        FROM runs r, generate_series($2::int, $3::int) g WHERE r.run_id = $1
        """
    static let copyCompletedRunPayload = """
        INSERT INTO run_payloads (run_id, created_at, payload)
        SELECT $4 || g, p.created_at - g * interval '10 milliseconds', p.payload
        FROM run_payloads p, generate_series($2::int, $3::int) g WHERE p.run_id = $1
        """
    static let copyCompletedRunTasks = """
        INSERT INTO tasks SELECT (jsonb_populate_record(NULL::tasks, to_jsonb(t) || jsonb_build_object(
            'task_id', $4 || g || '/' || t.task_id, 'run_id', $4 || g,
            'created_at', t.created_at - g * interval '10 milliseconds',
            'updated_at', t.updated_at - g * interval '10 milliseconds'))).*
        FROM tasks t, generate_series($2::int, $3::int) g WHERE t.run_id = $1
        """
    /// The copies' audit entries keep the original's hashes: the chains do not verify, and need not, in a
    /// benchmark's throwaway schema.
    static let copyCompletedRunAudit = """
        INSERT INTO audit_log SELECT (jsonb_populate_record(NULL::audit_log, to_jsonb(a) || jsonb_build_object(
            'run_id', $4 || g, 'at', a.at - g * interval '10 milliseconds',
            'run_started', a.run_started - g * interval '10 milliseconds'))).*
        FROM audit_log a, generate_series($2::int, $3::int) g WHERE a.run_id = $1
        """
    /// A history's runs were all signed by an earlier checkpoint.
    static let copyCompletedRunCheckpointed = """
        INSERT INTO audit_checkpointed (run_id, seq)
        SELECT $4 || g, r.audit_seq FROM runs r, generate_series($2::int, $3::int) g WHERE r.run_id = $1
        """
    /// The inbox ids of each copy (its trigger's and one per task attempt's result), random like real
    /// message ids, received when the copy ran.
    static let copyCompletedRunInbox = """
        INSERT INTO inbox (message_id, received_at)
        SELECT md5($4 || g || '/' || k)::uuid::text, now() - g * interval '10 milliseconds'
        FROM generate_series($2::int, $3::int) g,
             generate_series(0, (SELECT count(*) FROM tasks WHERE run_id = $1)::int) k
        """
    /// Each table of the current schema: its row counters and size (partitions of the audit log count apart).
    static let tableStatistics = """
        SELECT relname::text, n_live_tup, n_dead_tup, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del,
               autovacuum_count + vacuum_count, autoanalyze_count + analyze_count, pg_total_relation_size(relid),
               pg_indexes_size(relid)
        FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname
        """
    /// Every statement pg_stat_statements has seen in this database, where the stack loads it
    /// (scripts/lib/postgres.sh puts it in schema hms_stats).
    static let statementStatistics = """
        SELECT queryid, query, calls, total_exec_time, rows, shared_blks_hit, shared_blks_read
        FROM hms_stats.pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND queryid IS NOT NULL
        """

    // MARK: schema

    /// Drops a whole schema. Identifiers cannot be parameters: callers pass only a name checked to be
    /// letters, digits and underscores (``Store/dropSchema()``), which is quoted here.
    static func dropSchema(_ name: String) -> String { "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE" }
}
