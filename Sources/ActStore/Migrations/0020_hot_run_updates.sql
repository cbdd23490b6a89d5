-- hms-act schema, version 20: a run's row is rewritten by every batch that moves it (about ten times for a
-- five-step run), and each rewrite that cannot stay on its page inserts a new entry into every index of `runs`
-- (nine of them, most keyed by hashes: run id, correlation key, trace id), at a random place. In a 500,000-run
-- benchmark only 23 % of the updates were HOT (heap-only), because pages filled by inserts had no room left
-- (bench/README.md, "Flat with history"). Leaving 30 % of each new page free lets the rewrites of a moving run
-- stay on its page, touching no index; the status and finished_at columns still change once per run, at its end.
-- Applies to pages written from now on; existing pages keep their layout.
ALTER TABLE runs SET (fillfactor = 70);
