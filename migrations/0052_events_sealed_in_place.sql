-- Events are never edited or deleted, with one exception: `chorus erasure seal-existing`
-- (ADR 0019, "Sealing what was stored in clear") rewrites the payload of an event recorded
-- before sealing existed, holding personal values in clear, to the same values sealed under
-- its customer's key. It says so for its own transaction (`chorus.sealing_existing`), and
-- the row must change nowhere but its payload, from clear to sealed: an event's id, stream,
-- version, position, type, time and subject stay, and a sealed payload is never touched again.
CREATE FUNCTION events_change_only_by_sealing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('chorus.sealing_existing', true) = 'on' THEN
        IF substring(OLD.payload FROM 1 FOR 7) <> '\x7b22246b223a22'::bytea
           AND substring(OLD.payload FROM 1 FOR 2) <> '\x0044'::bytea
           AND (substring(NEW.payload FROM 1 FOR 7) = '\x7b22246b223a22'::bytea
                OR substring(NEW.payload FROM 1 FOR 2) = '\x0044'::bytea)
           AND (to_jsonb(OLD) - 'payload') = (to_jsonb(NEW) - 'payload')
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'events are never edited or deleted';
END;
$$;
DROP TRIGGER events_never_change ON events;
CREATE TRIGGER events_never_change BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_change_only_by_sealing();
