"""The event store read back for replays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.event_store import PostgresEventStore
from domain.catalog import topic_of
from domain.customer.aggregate import Customer

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

__all__ = ["PostgresHistory"]

_DECISION_TOPICS = [
    topic_of(Customer.MessageAllowed),
    topic_of(Customer.MessageDeferred),
    topic_of(Customer.MessageSuppressed),
    topic_of(Customer.MessageHeld),
]


class PostgresHistory:
    """Decodes stored events back into the domain's event objects."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def customers_decided_between(
        self, since: datetime, until: datetime, limit: int
    ) -> list[UUID]:
        rows = await self.pool.fetch(
            """SELECT DISTINCT stream_id FROM events
               WHERE topic = ANY($1::text[]) AND occurred_at >= $2 AND occurred_at <= $3
               LIMIT $4""",
            _DECISION_TOPICS,
            since,
            until,
            limit,
        )
        return [row[0] for row in rows]

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        rows = await self.pool.fetch(
            """SELECT stream_id, version, topic, class_version, occurred_at, payload
               FROM events WHERE stream_id = $1 ORDER BY version""",
            stream_id,
        )
        await self.events.open_keys(self.pool, (row[5] for row in rows))
        return [self.events.codec.decode(*row) for row in rows]
