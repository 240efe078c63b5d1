-- Each customer's data key, wrapped by the master key (ADR 0016). Erasing a customer deletes
-- the key and keeps the row: the personal values sealed with it read as erased from then on,
-- and no new key is ever made for that id.
CREATE TABLE customer_keys (
    customer_id uuid PRIMARY KEY,
    wrapped     bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
);
