-- The campaign stats projection (adapters/postgres/campaign_stats.py): counters per campaign,
-- step, variant, figure and detail, and what it remembers of each enrollment and message to
-- keep them.

-- step '' is the whole journey; split '' and arm '' every enrollment.
CREATE TABLE campaign_stats (
    campaign_id uuid    NOT NULL,
    step        text    NOT NULL,
    split       text    NOT NULL,
    arm         text    NOT NULL,
    figure      text    NOT NULL,
    detail      text    NOT NULL,
    value       numeric NOT NULL,
    PRIMARY KEY (campaign_id, step, split, arm, figure, detail)
);

-- Each enrollment's arms (split -> arm), the steps it took, where it is held, and whether it
-- converted.
CREATE TABLE campaign_stats_enrollments (
    enrollment_id uuid    PRIMARY KEY,
    campaign_id   uuid    NOT NULL,
    arms          jsonb   NOT NULL,
    steps         jsonb   NOT NULL,
    waiting       text,
    converted     boolean NOT NULL
);

-- Each campaign message (a fallback too): the send it answers for, and its last cost.
CREATE TABLE campaign_stats_messages (
    message_id    uuid    PRIMARY KEY,
    enrollment_id uuid    NOT NULL,
    step          text    NOT NULL,
    cost          numeric,
    currency      text
);
