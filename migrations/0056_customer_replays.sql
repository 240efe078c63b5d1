-- Replays of a customer's stream kept for `GET /v1/audit/customers/{id}?as_of=` (ADR 0023): the
-- state after `version` (its event recorded at `recorded_at`), written by the replaying code
-- named `code`, sealed with the customer's key, so that erasing the key shreds them with the
-- rest of the customer's personal values. A process that never replayed the customer starts
-- from the nearest one recorded at or before the instant instead of from the registration.
CREATE TABLE customer_replays (
    customer_id uuid NOT NULL,
    version integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    code text NOT NULL,
    state bytea NOT NULL,
    PRIMARY KEY (customer_id, version)
);
