-- An API key of role `agent` names the agent who acts with it.
ALTER TABLE api_keys ADD COLUMN agent text;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_agent_has_agent_role
    CHECK (agent IS NULL OR role = 'agent');

-- Agents and teams: event streams; these listings are written in the same statement.
CREATE TABLE agents (
    key         text        PRIMARY KEY,
    agent_id    uuid        NOT NULL UNIQUE,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE teams (
    key         text        PRIMARY KEY,
    team_id     uuid        NOT NULL UNIQUE,
    members     jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX teams_by_member ON teams USING gin (members);
