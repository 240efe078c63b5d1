-- API keys are stored as SHA-256 hashes; the key itself is shown once, when it is created.
CREATE TABLE api_keys (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'marketer', 'agent', 'auditor', 'service')),
    key_hash    bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
