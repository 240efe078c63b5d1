-- Built by the enrollments projection from the Enrollment events; rebuildable. One row an entry
-- of a customer into a campaign: the step it is at and why, what it waits for, how it ended.
-- `position` is the Entered event's place in the log: newest first, and a stable cursor.
CREATE TABLE enrollments (
    enrollment_id    uuid        PRIMARY KEY,
    campaign_id      uuid        NOT NULL,
    campaign_version integer     NOT NULL,
    customer_id      uuid        NOT NULL,
    entry            integer     NOT NULL,
    source           text        NOT NULL,
    status           text        NOT NULL,
    step             text,
    reason           text,
    waiting_for      text,
    waiting_until    timestamptz,
    entered_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    converted_at     timestamptz,
    exited_at        timestamptz,
    exit_reason      text,
    position         bigint      NOT NULL
);
CREATE INDEX enrollments_by_campaign ON enrollments (campaign_id, position DESC);
CREATE INDEX enrollments_by_customer ON enrollments (customer_id, position DESC);
