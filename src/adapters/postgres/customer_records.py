"""What is recorded about customers, read from PostgreSQL as last committed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adapters.postgres.event_store import PostgresEventStore, RecordedEvent
from domain.customer.aggregate import Customer

if TYPE_CHECKING:
    from uuid import UUID

    import asyncpg

    from domain.customer.identities import Identity

__all__ = ["PostgresCustomerRecords", "Timeline"]

_SURVIVOR = """
SELECT coalesce(
    (SELECT survivor_id FROM customer_merges WHERE merged_id = $1),
    (SELECT stream_id FROM events WHERE stream_id = $1 AND version = 1 AND subject_id = $1)
)
"""
_TIMELINE = """
SELECT position, stream_id, version, topic, occurred_at, payload FROM events
WHERE subject_id = ANY(
    ARRAY(SELECT merged_id FROM customer_merges WHERE survivor_id = $1) || $1::uuid
) AND ($2::bigint IS NULL OR position < $2)
ORDER BY position DESC LIMIT $3
"""
_DECISION = """
SELECT e.position, e.stream_id, e.version, e.topic, e.occurred_at, e.payload
FROM decisions d JOIN events e ON e.stream_id = d.customer_id AND e.version = d.stream_version
WHERE d.decision_id = $1
"""


@dataclass(frozen=True, slots=True)
class Timeline:
    events: list[RecordedEvent]
    next_before: int | None


class PostgresCustomerRecords:
    """Customers by id and identity, their timelines and decisions, read from the pool."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def survivor(self, customer_id: UUID) -> UUID | None:
        found: UUID | None = await self.pool.fetchval(_SURVIVOR, customer_id)
        return found

    async def get(self, customer_id: UUID) -> Customer | None:
        loaded = await self.events.load(self.pool, [customer_id])
        customer = loaded.get(customer_id)
        return customer if isinstance(customer, Customer) else None

    async def find(self, identity: Identity) -> UUID | None:
        found: UUID | None = await self.pool.fetchval(
            "SELECT customer_id FROM identities WHERE type = $1 AND value = $2",
            identity.type,
            identity.value,
        )
        return found

    async def decision(self, decision_id: UUID) -> RecordedEvent | None:
        found = await self.events.recorded(self.pool, await self.pool.fetch(_DECISION, decision_id))
        return found[0] if found else None

    async def timeline(self, customer_id: UUID, *, limit: int, before: int | None) -> Timeline:
        rows = await self.pool.fetch(_TIMELINE, customer_id, before, limit + 1)
        events = await self.events.recorded(self.pool, rows[:limit])
        next_before = events[-1].position if len(rows) > limit and events else None
        return Timeline(events, next_before)
