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

-- The key that seals the signals received about an identity, before attribution knows whose
-- they are: by a digest of the identity (an HMAC under the master key), never the identity.
-- Its data key is a row of `customer_keys` under `key_id`; erasing a customer deletes the
-- rows of their identities and that key, and the next signal about one of them gets a new key.
CREATE TABLE identity_keys (
    digest bytea PRIMARY KEY,
    key_id uuid  NOT NULL UNIQUE
);
