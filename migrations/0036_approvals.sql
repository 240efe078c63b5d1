-- Messages held for an operator's approval. The held message itself waits in
-- `deferred_messages` with its approval's id, due when the hold expires: the scheduler claims
-- it FOR UPDATE SKIP LOCKED and records the expiry in the transaction that deletes it, and an
-- operator's verdict deletes it first, so a hold is settled exactly once. This table is what
-- operators list: the hold (its id is the hold decision's), its rule and its verdict.
ALTER TABLE deferred_messages ADD COLUMN approval_id uuid;

CREATE TABLE approvals (
    approval_id  uuid        PRIMARY KEY,
    message_id   uuid        NOT NULL,
    customer_id  uuid        NOT NULL,
    rule_id      text        NOT NULL,
    reason       text        NOT NULL,
    team         text        NOT NULL,
    purpose      text        NOT NULL,
    channel      text,
    origin       text        NOT NULL,
    held_at      timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    status       text        NOT NULL DEFAULT 'pending',
    settled_at   timestamptz,
    settled_by   text,
    note         text,
    decision_id  uuid
);
CREATE INDEX approvals_newest ON approvals (held_at DESC, approval_id DESC);
CREATE INDEX approvals_pending ON approvals (held_at DESC, approval_id DESC)
    WHERE status = 'pending';
CREATE INDEX approvals_of_message ON approvals (message_id);
