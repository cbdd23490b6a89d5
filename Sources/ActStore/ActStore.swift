/// The durable store: migrations, runs, tasks, timers, outbox, inbox, audit.
