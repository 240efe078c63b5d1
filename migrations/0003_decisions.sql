-- Where each decision's event lives, so GET /v1/decisions/{id} reads the recorded decision.
CREATE TABLE decisions (
    decision_id    uuid PRIMARY KEY,
    message_id     uuid NOT NULL,
    customer_id    uuid NOT NULL,
    stream_version integer NOT NULL
);
CREATE INDEX decisions_by_message ON decisions (message_id);

-- A retried send request with the same idempotency key answers with the first decision.
CREATE TABLE message_requests (
    idempotency_key text PRIMARY KEY,
    message_id      uuid NOT NULL,
    customer_id     uuid NOT NULL,
    decision_id     uuid NOT NULL
);
