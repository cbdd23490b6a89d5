-- hms-act schema, version 12: which version of a playbook new runs start on (docs/operations.md, "Pinning,
-- deprecating and disabling versions"). A version without a row is active and not pinned. The rules are in
-- ActStore/Records/PlaybookControls.swift.
CREATE TABLE playbook_version_controls (
    version_id  bigint      PRIMARY KEY REFERENCES playbook_versions (version_id),
    playbook_id text        NOT NULL,
    state       text        NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'deprecated', 'disabled')),
    pinned      boolean     NOT NULL DEFAULT false,
    changed_by  text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    reason      text
);
-- At most one pinned version per playbook.
CREATE UNIQUE INDEX playbook_version_controls_one_pin ON playbook_version_controls (playbook_id) WHERE pinned;

-- Every change, with who made it and why.
CREATE TABLE playbook_control_log (
    change_id   bigserial   PRIMARY KEY,
    playbook_id text        NOT NULL,
    version_id  bigint,
    action      text        NOT NULL,                  -- active, deprecated, disabled, pin, unpin
    actor       text        NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playbook_control_log_by_playbook ON playbook_control_log (playbook_id, change_id DESC);
