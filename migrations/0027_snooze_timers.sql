-- When each snoozed conversation wakes; a leased timer's due_at is pushed to its lease's end.
CREATE TABLE conversation_snoozes (
    conversation_id uuid        PRIMARY KEY,
    due_at          timestamptz NOT NULL
);
CREATE INDEX conversation_snoozes_due ON conversation_snoozes (due_at);
