-- A key created again with the secret it has (the demo's admin key taking a new scope) is
-- logged as `changed`; and every change to a key is also a document in the event log
-- (`ApiKey.<Change>` on the key's stream, ADR 0014), so auditors read it with the rest. The
-- changes logged before this migration are copied there, in their order, once.
ALTER TABLE api_key_changes DROP CONSTRAINT api_key_changes_change_check;
ALTER TABLE api_key_changes ADD CONSTRAINT api_key_changes_change_check
    CHECK (change IN ('created', 'changed', 'rotated', 'revoked'));

INSERT INTO events (stream_id, version, topic, occurred_at, payload)
SELECT key_id,
       row_number() OVER (PARTITION BY key_id ORDER BY seq),
       'ApiKey.' || initcap(change),
       at,
       convert_to((jsonb_build_object('key_id', key_id::text, 'by', by_key) || detail)::text, 'UTF8')
FROM api_key_changes
WHERE NOT EXISTS (SELECT 1 FROM events WHERE events.stream_id = api_key_changes.key_id);
