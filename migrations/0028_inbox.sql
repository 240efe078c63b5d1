-- Built by the inbox projection from the Conversation events; rebuildable. One row a
-- conversation, as agents list and watch them. `seq` counts the conversation events applied
-- when the row last changed: rows change in `seq` order, so a live stream resumes after the
-- last `seq` its client saw, and a rebuild gives every row the `seq` the live projection did.
CREATE TABLE inbox (
    conversation_id uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    topic           text        NOT NULL,
    status          text        NOT NULL,
    team            text,
    agent           text,
    priority        text        NOT NULL,
    intent          text,
    sentiment       text,
    channel         text,
    channels        text[]      NOT NULL,
    tags            text[]      NOT NULL,
    messages        integer     NOT NULL,
    notes           integer     NOT NULL,
    breaches        integer     NOT NULL,
    last_message_at timestamptz,
    awaiting_since  timestamptz,
    snoozed_until   timestamptz,
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    seq             bigint      NOT NULL
);
CREATE UNIQUE INDEX inbox_by_seq ON inbox (seq);
CREATE INDEX inbox_by_team ON inbox (team, seq DESC);
CREATE INDEX inbox_by_agent ON inbox (agent, seq DESC) WHERE agent IS NOT NULL;
CREATE INDEX inbox_by_customer ON inbox (customer_id);
