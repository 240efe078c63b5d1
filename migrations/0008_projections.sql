-- Where each projection has read the global log up to. Advanced in the same transaction as
-- the projection's writes, so a crash neither skips nor applies an event twice.
CREATE TABLE projection_positions (
    name           text        PRIMARY KEY,
    transaction_id xid8        NOT NULL DEFAULT '0',
    position       bigint      NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);


-- One row per customer, merged ones included (marked with the survivor). Identities are
-- `type:value` strings; a merged customer's identities have moved to the survivor.
-- Built by the customer_directory projection; rebuildable from the customers' streams.
CREATE TABLE customer_directory (
    customer_id uuid        PRIMARY KEY,
    identities  text[]      NOT NULL DEFAULT '{}',
    first_name  text,
    last_name   text,
    locale      text,
    country     text,
    time_zone   text,
    attributes  jsonb       NOT NULL DEFAULT '{}',
    merged_into uuid,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX customer_directory_identities_idx ON customer_directory USING gin (identities);
