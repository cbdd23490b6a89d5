-- hms-act schema, version 8: dead letters kept for operators.
-- `hms-act dead collect` (under the operator's own broker user: the service may not read its dead-letter
-- queue) moves dead-lettered messages here, with where they were first published and why they died. An
-- operator replays one to its original exchange and routing key, or discards it; either is recorded with
-- who did it and why. Waiting ones are listed by id.
CREATE TABLE dead_letters (
    dead_letter_id bigserial   PRIMARY KEY,
    collected_at   timestamptz NOT NULL DEFAULT now(),
    exchange       text        NOT NULL,
    routing_key    text        NOT NULL,
    queue          text,
    reason         text        NOT NULL,
    message_id     text,
    properties     jsonb       NOT NULL,
    body           bytea       NOT NULL,
    status         text        NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'replayed', 'discarded')),
    handled_at     timestamptz,
    handled_by     text,
    note           text
);
CREATE INDEX dead_letters_waiting ON dead_letters (dead_letter_id) WHERE status = 'dead';
