-- Templates by key, for listing. Each template's versions are events on its own stream
-- (id = uuid5 of the key); this row is written in the same statement as those events.
CREATE TABLE templates (
    key            text        PRIMARY KEY,
    template_id    uuid        NOT NULL UNIQUE,
    latest_version integer     NOT NULL,
    description    text        NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL
);
