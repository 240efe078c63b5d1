-- The first answer to each write a client made with an Idempotency-Key (campaign writes and API
-- enrollments): a retry with the same key and body is answered from here, the same key with
-- another body is refused. `scope` is the API key that wrote; `fingerprint` hashes the method,
-- the path and the body.
CREATE TABLE write_answers (
    scope           text        NOT NULL,
    idempotency_key text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    status_code     integer     NOT NULL,
    body            bytea       NOT NULL,
    answered_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, idempotency_key)
);
