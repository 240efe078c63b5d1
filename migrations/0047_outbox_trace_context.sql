-- The W3C trace context (`traceparent`) of the request that queued the message, so the
-- dispatcher's span continues that trace in whichever process leases it (ADR 0020).
ALTER TABLE outbox ADD COLUMN trace_context text;
