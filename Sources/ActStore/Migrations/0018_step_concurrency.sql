-- hms-act schema, version 18: concurrency keys on a step (`concurrency:` on a task step, docs/playbooks.md
-- "Concurrency").
--
-- A step's slots share the table with the runs' (version 16): its scope is `<playbook>/<step>`, and its rows
-- say which visit of the step holds or waits (`step`, `visit`; both NULL for a run's own slot), so that a
-- slot granted to a visit that has since ended is never taken by the next visit.
ALTER TABLE concurrency_slots ADD COLUMN step text, ADD COLUMN visit bigint;
