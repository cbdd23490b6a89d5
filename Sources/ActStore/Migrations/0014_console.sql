-- hms-act schema, version 14: the console at /ui (docs/console.md).
--
-- Sessions: a signed-in browser holds a random secret in an HttpOnly cookie; only its SHA-256 is kept here,
-- with the configured API token it signed in with (by the digest of that token's secret, so removing the
-- token from http.tokens ends its sessions) and the CSRF token every form of the session must carry. Any
-- replica answers any request of a session; signing out deletes the row.
CREATE TABLE console_sessions (
    session_digest bytea       PRIMARY KEY,
    token_name     text        NOT NULL,
    token_digest   bytea       NOT NULL,
    csrf_token     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);

-- Desk claims: a person working an open task from the console's inbox holds it, so that a colleague does
-- not do the same work. One holder per task attempt (the primary key makes a second claim lose); released
-- by its holder, or gone with the task (retention removes the run's tasks).
CREATE TABLE desk_claims (
    task_id    text        NOT NULL,
    attempt    integer     NOT NULL,
    claimed_by text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, attempt),
    FOREIGN KEY (task_id, attempt) REFERENCES tasks (task_id, attempt) ON DELETE CASCADE
);
