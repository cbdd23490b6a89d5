-- hms-act schema, version 13: the role `hms-act serve` runs as need not own the schema (docs/security.md,
-- "Database roles"). An owner role migrates (`hms-act migrate` with postgres.app_role, which grants the serving
-- role its rights); the serving role cannot then disable the audit triggers, alter or drop the tables.
--
-- Replicas create next months' audit partitions (Housekeeping) through this function. It now runs with its
-- owner's rights, with its search path pinned to this schema, so a serving role without CREATE on the schema
-- can still call it; only the roles granted EXECUTE may.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION hms_act_ensure_audit_partitions(timestamptz, timestamptz) '
        || 'SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END;
$$;
REVOKE EXECUTE ON FUNCTION hms_act_ensure_audit_partitions(timestamptz, timestamptz) FROM PUBLIC;
