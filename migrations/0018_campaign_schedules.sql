-- Broadcasts: one durable timer per active campaign entered on a `schedule`, claimed FOR UPDATE
-- SKIP LOCKED by a run that takes the enrollments process's turn. `checked_until` is how far
-- the schedule has been run: a run enrols the members whose own occurrence (in their time zone)
-- falls after it and by now, then moves it to now and `due_at` to the next occurrence in any
-- member's zone (NULL: it will not come round again).
CREATE TABLE campaign_schedules (
    campaign_id   uuid        PRIMARY KEY,
    version       integer     NOT NULL,
    checked_until timestamptz NOT NULL,
    due_at        timestamptz
);
CREATE INDEX campaign_schedules_due ON campaign_schedules (due_at) WHERE due_at IS NOT NULL;

-- Each customer a schedule's occurrence enrolled: written in the run's transaction, so an
-- occurrence enrols a customer once whatever restarts or how many workers there are.
CREATE TABLE campaign_schedule_entries (
    campaign_id uuid        NOT NULL,
    occurrence  timestamptz NOT NULL,
    customer_id uuid        NOT NULL,
    PRIMARY KEY (campaign_id, occurrence, customer_id)
);
