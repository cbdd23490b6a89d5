-- hms-act schema, version 4: checkpoints choose the heads they sign by sequence, not by time.
-- Each run's last checkpointed sequence; a run is due for the next checkpoint when its audit_seq is past
-- it. Choosing by `updated_at > last checkpoint time` skipped a commit stamped before a checkpoint but
-- committed after it had read the heads (see Store.writeCheckpoint).
CREATE TABLE audit_checkpointed (
    run_id text   PRIMARY KEY,
    seq    bigint NOT NULL
);

-- Seeded from the checkpoints already written, so the first checkpoint after the upgrade signs only what
-- moved since (plus any run an earlier checkpoint missed).
INSERT INTO audit_checkpointed (run_id, seq)
SELECT h ->> 'run', max((h ->> 'seq')::bigint)
FROM audit_checkpoints c, jsonb_array_elements(c.heads) AS h
GROUP BY 1;
