-- Segments: definitions are event streams; this lookup is written in the same statement.
CREATE TABLE segments (
    key         text        PRIMARY KEY,
    segment_id  uuid        NOT NULL UNIQUE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    version     integer     NOT NULL,
    condition   jsonb       NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL
);

-- The segment evaluator's memory, written with the Entered/Exited events it records: whether
-- the customer is in, the version of the customer's membership stream, and when the
-- condition may change with time alone (a signal leaving a window), for the scheduler.
CREATE TABLE segment_states (
    segment_id  uuid        NOT NULL,
    customer_id uuid        NOT NULL,
    member      boolean     NOT NULL,
    version     integer     NOT NULL,
    due_at      timestamptz,
    PRIMARY KEY (segment_id, customer_id)
);
CREATE INDEX segment_states_due ON segment_states (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX segment_states_by_customer ON segment_states (customer_id);

-- Built by the segment_members projection from the Entered/Exited events; rebuildable.
CREATE TABLE segment_members (
    segment_id  uuid        NOT NULL,
    customer_id uuid        NOT NULL,
    entered_at  timestamptz NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
);
