-- Who answers conversations, and how much each agent holds: listings written in the statement
-- that appends their aggregates' events (adapters/postgres/listings.py), so routing reads them
-- never behind their streams.

-- An agent's skills, presence and capacity per channel kind (`{"chat": 3, "email": 10}`).
CREATE TABLE conversation_agents (
    key            text        PRIMARY KEY,
    agent_id       uuid        NOT NULL,
    skills         jsonb       NOT NULL,
    presence       text        NOT NULL,
    capacity       jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- A team's members and the skills it covers (JSON arrays of keys).
CREATE TABLE conversation_teams (
    key            text        PRIMARY KEY,
    team_id        uuid        NOT NULL,
    skills         jsonb       NOT NULL,
    members        jsonb       NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- Each conversation's holder: its team, its agent (none while queued), whether it is open, and
-- the channel kind it counts as on its agent: the kind when the agent took it, kept while the
-- same agent holds it (a customer moving from email to WhatsApp does not move the load).
CREATE TABLE conversation_holds (
    conversation_id uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    team            text,
    agent           text,
    kind            text,
    open            boolean     NOT NULL,
    priority        smallint    NOT NULL,
    waiting_since   timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX conversation_holds_queued ON conversation_holds (team)
    WHERE agent IS NULL AND open AND team IS NOT NULL;
CREATE INDEX conversation_holds_by_customer ON conversation_holds (customer_id) WHERE open;

-- How many open conversations of each kind an agent holds. Kept by the trigger below from the
-- holds, row by row: two transactions giving one agent a conversation queue on this row, and
-- the second sees the first's count. No count ever grows past the agent's capacity: the
-- trigger refuses it (check_violation, constraint `agent_capacity`), which fails the commit.
CREATE TABLE agent_loads (
    agent            text        NOT NULL,
    kind             text        NOT NULL,
    held             integer     NOT NULL CHECK (held >= 0),
    last_assigned_at timestamptz,
    PRIMARY KEY (agent, kind)
);

CREATE FUNCTION conversation_hold_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_held boolean := TG_OP = 'UPDATE' AND OLD.agent IS NOT NULL AND OLD.open;
    is_held  boolean := NEW.agent IS NOT NULL AND NEW.open;
    now_held integer;
    allowed  integer;
BEGIN
    IF was_held AND is_held AND OLD.agent = NEW.agent AND OLD.kind = NEW.kind THEN
        RETURN NULL;
    END IF;
    IF was_held THEN
        UPDATE agent_loads SET held = held - 1 WHERE agent = OLD.agent AND kind = OLD.kind;
    END IF;
    IF is_held THEN
        INSERT INTO agent_loads AS l (agent, kind, held, last_assigned_at)
        VALUES (NEW.agent, NEW.kind, 1, NEW.updated_at)
        ON CONFLICT (agent, kind) DO UPDATE
            SET held = l.held + 1, last_assigned_at = EXCLUDED.last_assigned_at
        RETURNING held INTO now_held;
        SELECT (capacity ->> NEW.kind)::integer INTO allowed
        FROM conversation_agents WHERE key = NEW.agent;
        IF now_held > coalesce(allowed, 0) THEN
            RAISE EXCEPTION 'agent % would hold % % conversations, over their capacity of %',
                NEW.agent, now_held, NEW.kind, coalesce(allowed, 0)
                USING ERRCODE = 'check_violation', CONSTRAINT = 'agent_capacity';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER conversation_holds_counted AFTER INSERT OR UPDATE ON conversation_holds
    FOR EACH ROW EXECUTE FUNCTION conversation_hold_counted();
