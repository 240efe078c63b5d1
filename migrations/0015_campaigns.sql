-- Campaigns: definitions are event streams; this listing is written in the same statement.
-- `journey` is the version in force; `versions` holds, by version number, when its journey was
-- written last and by whom ({"2": {"at": ..., "by": ...}}), merged as versions are written.
CREATE TABLE campaigns (
    key         text        PRIMARY KEY,
    campaign_id uuid        NOT NULL UNIQUE,
    name        text        NOT NULL,
    status      text        NOT NULL,
    version     integer     NOT NULL,
    journey     jsonb       NOT NULL,
    versions    jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX campaigns_by_status ON campaigns (status, key);
