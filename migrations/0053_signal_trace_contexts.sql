-- The W3C trace context (`traceparent`) each signal was received in, so that what it causes in
-- the processes that read the log later (a campaign's entry and its send) continues that trace
-- (ADR 0020). Operational, not a fact: kept for a while only, pruned as new rows come in.
CREATE TABLE signal_trace_contexts (
    signal_id     uuid        PRIMARY KEY,
    trace_context text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signal_trace_contexts_by_age ON signal_trace_contexts (received_at);
