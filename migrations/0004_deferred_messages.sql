-- Deferred messages wait here for their time; the scheduler decides them again when due.
-- Written in the same transaction as the decision that deferred them, so none is lost.
CREATE TABLE deferred_messages (
    message_id  uuid        PRIMARY KEY,
    customer_id uuid        NOT NULL,
    due_at      timestamptz NOT NULL,
    request     bytea       NOT NULL,
    origin      text        NOT NULL
);
CREATE INDEX deferred_messages_due ON deferred_messages (due_at);
