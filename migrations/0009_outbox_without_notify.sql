-- NOTIFY takes PostgreSQL's global notification lock at commit, serialising every decision
-- that queues a message (ADR 0004 measured it on events). Dispatch lanes poll instead.
DROP TRIGGER outbox_inserted ON outbox;
DROP FUNCTION outbox_notify();
