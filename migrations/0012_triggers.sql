-- Triggers: definitions are event streams; this lookup is written in the same statement.
CREATE TABLE triggers (
    key         text        PRIMARY KEY,
    trigger_id  uuid        NOT NULL UNIQUE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    version     integer     NOT NULL,
    definition  jsonb       NOT NULL,
    deleted     boolean     NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL
);

-- The trigger matcher's memory: each trigger as of the matcher's place in the log (not as of
-- now), written in the matcher's transaction as Trigger events pass, so a trigger fires on
-- exactly the source events recorded after its definition. `events_seen` counts the Trigger
-- events folded in; their sum tells the matcher whether its cache is still this table.
CREATE TABLE trigger_matcher_state (
    trigger_id  uuid    PRIMARY KEY,
    key         text    NOT NULL,
    version     integer NOT NULL,
    definition  jsonb   NOT NULL,
    active      boolean NOT NULL,
    events_seen integer NOT NULL
);

-- Built by the trigger_firings projection from the Fired events; rebuildable. `position` is
-- the Fired event's place in the log: newest first, and a stable cursor.
CREATE TABLE trigger_firings (
    firing_id          uuid        PRIMARY KEY,
    trigger_id         uuid        NOT NULL,
    trigger_version    integer     NOT NULL,
    customer_id        uuid        NOT NULL,
    source_kind        text        NOT NULL,
    source_stream_id   uuid        NOT NULL,
    source_version     integer     NOT NULL,
    source_occurred_at timestamptz NOT NULL,
    source_recorded_at timestamptz NOT NULL,
    fired_at           timestamptz NOT NULL,
    signal_type        text,
    signal_event_id    text,
    segment_key        text,
    exit_reason        text,
    position           bigint      NOT NULL
);
CREATE INDEX trigger_firings_newest ON trigger_firings (trigger_id, position DESC);
