-- The event store: every fact Chorus knows, in streams (one per aggregate) and one global log.
CREATE TABLE events (
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    -- Readers of the global log follow (transaction_id, position) and stop below the oldest
    -- transaction still running, so an event that commits late is never skipped.
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id      uuid        NOT NULL,
    version        integer     NOT NULL,
    topic          text        NOT NULL,
    class_version  smallint    NOT NULL DEFAULT 1,
    occurred_at    timestamptz NOT NULL,
    -- The customer the fact is about, for timelines and audits.
    subject_id     uuid,
    payload        bytea       NOT NULL,
    PRIMARY KEY (stream_id, version)
);
CREATE UNIQUE INDEX events_global_log ON events (transaction_id, position);
CREATE INDEX events_by_subject ON events (subject_id, position) WHERE subject_id IS NOT NULL;

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are never edited or deleted';
END;
$$;
CREATE TRIGGER events_never_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_never_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- Which customer each identity belongs to. The primary key makes an identity belong to at
-- most one customer, also when two producers race to introduce the same new identity.
CREATE TABLE identities (
    type        text NOT NULL,
    value       text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (type, value)
);
CREATE INDEX identities_by_customer ON identities (customer_id);

-- A merged customer's id keeps resolving to the survivor.
CREATE TABLE customer_merges (
    merged_id   uuid PRIMARY KEY,
    survivor_id uuid NOT NULL
);
CREATE INDEX customer_merges_by_survivor ON customer_merges (survivor_id);
