-- Events a projection could not apply after its retries (ADR 0007): set aside so the projection
-- goes on with the next, kept until `chorus projections retry` applies them or
-- `chorus projections skip` drops them. Settled rows stay, as the record of what was done.
CREATE TABLE parked_events (
    projection     text        NOT NULL,
    -- The event's place in the global log (`position` alone is unique) and its stream.
    transaction_id xid8        NOT NULL,
    position       bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    version        integer     NOT NULL,
    topic          text        NOT NULL,
    error          text        NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    -- NULL while parked; 'applied' by a retry or 'skipped', by whom, when and why.
    settled        text        CHECK (settled IN ('applied', 'skipped')),
    settled_at     timestamptz,
    settled_by     text,
    reason         text,
    PRIMARY KEY (projection, position)
);
CREATE INDEX parked_events_unsettled ON parked_events (projection, transaction_id, position)
    WHERE settled IS NULL;

-- A projection whose last page failed, written by its runner (another process than /ready's):
-- the error, and since when; cleared by the next page it applies.
ALTER TABLE projection_positions ADD COLUMN failing text, ADD COLUMN failing_since timestamptz;
