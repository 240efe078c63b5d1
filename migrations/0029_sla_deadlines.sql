-- The SLA timers process's memory: one durable deadline a conversation whose clock runs,
-- written in its runner's transaction (or a timer run's, which takes the same turn). A due one
-- is claimed FOR UPDATE SKIP LOCKED and marked breached in the transaction that records the
-- breach, so it fires once even if a worker dies; the inbox reads `due_at` as the time to breach.
CREATE TABLE sla_deadlines (
    conversation_id uuid        PRIMARY KEY,
    sla             text        NOT NULL,
    due_at          timestamptz NOT NULL,
    breached        boolean     NOT NULL DEFAULT false
);
CREATE INDEX sla_deadlines_due ON sla_deadlines (due_at) WHERE NOT breached;
