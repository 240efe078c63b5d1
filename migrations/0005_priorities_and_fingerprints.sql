-- Among deferred messages waiting for the same slot, the higher priority goes first.
ALTER TABLE deferred_messages ADD COLUMN priority integer NOT NULL DEFAULT 0;
CREATE INDEX deferred_messages_due_by_priority ON deferred_messages (due_at, priority DESC);

-- An idempotency key reused for a different request is refused, not answered with another's decision.
ALTER TABLE message_requests ADD COLUMN fingerprint bytea;
