-- Keys limited to teams, keys that expire, and an append-only log of every change to a key
-- naming the key that made it (docs/adr/0014-api-keys-as-a-table-with-a-change-log.md).
ALTER TABLE api_keys ADD COLUMN teams text[] NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_admin_and_auditor_see_every_team
    CHECK (cardinality(teams) = 0 OR role NOT IN ('admin', 'auditor'));

CREATE TABLE api_key_changes (
    seq     bigserial   PRIMARY KEY,
    key_id  uuid        NOT NULL REFERENCES api_keys (id),
    change  text        NOT NULL CHECK (change IN ('created', 'rotated', 'revoked')),
    by_key  text        NOT NULL,
    at      timestamptz NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX api_key_changes_by_key ON api_key_changes (key_id, seq);

CREATE FUNCTION api_key_changes_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api_key_changes is append-only';
END $$;
CREATE TRIGGER api_key_changes_append_only BEFORE UPDATE OR DELETE ON api_key_changes
    FOR EACH ROW EXECUTE FUNCTION api_key_changes_are_append_only();
