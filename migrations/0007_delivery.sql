-- Allowed messages wait here for dispatch. A row is written in the same statement as the
-- decision that allowed it and removed in the same transaction as the provider's acceptance
-- or the recorded failure, so no message is lost or sent without its decision.
-- `leased_until` is a dispatcher's claim: a worker killed mid-send leaves it to expire,
-- and another worker sends again under the same idempotency key.
CREATE TABLE outbox (
    message_id   uuid        PRIMARY KEY,
    channel      text        NOT NULL,
    due_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    leased_until timestamptz
);
CREATE INDEX outbox_due ON outbox (channel, due_at);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chorus_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Each message's current state, kept with its events: for lookups by provider id,
-- GET /v1/messages/{id} and cost reports. Rebuildable from the messages' streams.
CREATE TABLE messages (
    message_id          uuid        PRIMARY KEY,
    customer_id         uuid        NOT NULL,
    decision_id         uuid        NOT NULL,
    channel             text        NOT NULL,
    purpose             text        NOT NULL,
    team                text        NOT NULL,
    campaign            text,
    status              text        NOT NULL,
    provider            text,
    provider_message_id text,
    cost                numeric,
    currency            text,
    queued_at           timestamptz NOT NULL,
    stream_version      integer     NOT NULL
);
CREATE UNIQUE INDEX messages_by_provider_id ON messages (provider, provider_message_id);
CREATE INDEX messages_by_queued_at ON messages (queued_at);

-- What a deferred message will say once it is allowed, rendered when it was requested.
ALTER TABLE deferred_messages ADD COLUMN delivery bytea;

-- A message's channel fallback waits here until the message is delivered (then it is dropped)
-- or until it is due or the message failed (then its request is decided and sent).
CREATE TABLE fallbacks (
    message_id   uuid        PRIMARY KEY,
    customer_id  uuid        NOT NULL,
    due_at       timestamptz NOT NULL,
    request      bytea       NOT NULL,
    delivery     bytea       NOT NULL,
    leased_until timestamptz
);
CREATE INDEX fallbacks_due ON fallbacks (due_at);

-- A status can overtake its message: the provider calls back before the dispatcher has
-- recorded the provider's id. It is parked here and applied once the message is known.
CREATE TABLE parked_statuses (
    provider            text        NOT NULL,
    provider_message_id text        NOT NULL,
    status              text        NOT NULL,
    update              bytea       NOT NULL,
    parked_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_message_id, status)
);
