-- The campaign enrollments process's memory, written in its runner's transaction (or in a
-- timer run's, which takes the same turn), so it always stands for its place in the log.

-- Each campaign as of the process's place in the log: status, version in force, and how that
-- version is entered (the journey's `entry` document).
CREATE TABLE enrollment_campaigns (
    campaign_id     uuid    PRIMARY KEY,
    key             text    NOT NULL,
    status          text    NOT NULL,
    version         integer NOT NULL,
    entry           jsonb   NOT NULL,
    archived_reason text
);

-- Every enrollment the process has seen: re-entry and caps read it, signals find the
-- enrollments of their customer in it.
CREATE TABLE enrollment_index (
    enrollment_id uuid        PRIMARY KEY,
    campaign_id   uuid        NOT NULL,
    version       integer     NOT NULL,
    customer_id   uuid        NOT NULL,
    entry         integer     NOT NULL,
    entered_at    timestamptz NOT NULL,
    exited_at     timestamptz,
    sends         integer     NOT NULL
);
CREATE INDEX enrollment_index_active ON enrollment_index (customer_id) WHERE exited_at IS NULL;
CREATE INDEX enrollment_index_campaign ON enrollment_index (campaign_id, customer_id);

-- Which send of which enrollment each message was decided for (its fallback's too).
CREATE TABLE enrollment_messages (
    message_id    uuid PRIMARY KEY,
    enrollment_id uuid NOT NULL,
    step          text NOT NULL
);

-- One durable timer per held enrollment: claimed FOR UPDATE SKIP LOCKED, and deleted in the
-- transaction that takes the enrollment's next steps, so it fires once even if a worker dies.
CREATE TABLE campaign_timers (
    enrollment_id uuid        PRIMARY KEY,
    campaign_id   uuid        NOT NULL,
    due_at        timestamptz NOT NULL
);
CREATE INDEX campaign_timers_due ON campaign_timers (due_at);
