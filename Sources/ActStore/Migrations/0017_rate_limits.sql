-- hms-act schema, version 17: agents' rate limits (`rate_limit: 50/min` in an agent file).
--
-- One token bucket per rate-limited agent, shared by every replica's outbox relays: a relay about to publish
-- an agent's tasks locks its row, refills it for the time since `refilled_at` (at most `burst` tokens), and
-- takes one token per task; tasks without a token stay in the outbox, available again when their token is due.
CREATE TABLE rate_buckets (
    rate_key    text             PRIMARY KEY,
    tokens      double precision NOT NULL,
    refilled_at timestamptz      NOT NULL DEFAULT now()
);
