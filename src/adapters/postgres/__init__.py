"""PostgreSQL over asyncpg: the event store, the identity index, migrations and API keys."""
