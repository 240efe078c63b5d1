-- Read models of what customers did, built by the signal_activity projection from the
-- Signal streams (merged customers' rows move to the survivor); rebuildable from the log.

-- Every signal of a customer, for conditions over properties (segments, triggers).
CREATE TABLE customer_signals (
    customer_id uuid        NOT NULL,
    signal_type text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    signal_id   uuid        NOT NULL,
    properties  jsonb       NOT NULL DEFAULT '{}',
    PRIMARY KEY (customer_id, signal_type, occurred_at, signal_id)
);

-- Signals per customer, type and hour: rolling-window counts are sums of buckets.
CREATE TABLE signal_counters (
    customer_id uuid        NOT NULL,
    signal_type text        NOT NULL,
    hour        timestamptz NOT NULL,
    count       integer     NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (customer_id, signal_type, hour)
);

-- The directory learns consents (`channel:purpose` -> granted; `channel:*` false is an opt-out
-- of the whole channel); it is rebuilt from the log on the next run to fill them in.
ALTER TABLE customer_directory ADD COLUMN consents jsonb NOT NULL DEFAULT '{}';
CREATE INDEX customer_directory_attributes_idx ON customer_directory USING gin (attributes);
TRUNCATE customer_directory;
DELETE FROM projection_positions WHERE name = 'customer_directory';
