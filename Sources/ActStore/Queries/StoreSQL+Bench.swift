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

    // MARK: schema

    /// Drops a whole schema. Identifiers cannot be parameters: callers pass only a name checked to be
    /// letters, digits and underscores (``Store/dropSchema()``), which is quoted here.
    static func dropSchema(_ name: String) -> String { "DROP SCHEMA IF EXISTS \"\(name)\" CASCADE" }
}
