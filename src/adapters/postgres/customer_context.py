"""A customer's last signals and decisions, read from PostgreSQL with an index and a limit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.postgres.event_store import PostgresEventStore, RecordedEvent
from ports.customer_context import RecentSignal

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

    import asyncpg

__all__ = ["PostgresContextReads"]

# The newest few of each signal type, each read backwards on the primary key (customer, type,
# time), then the newest of those: never a sort of all the customer's signals.
_LAST_SIGNALS = """
SELECT s.signal_id, s.signal_type, s.occurred_at
FROM (SELECT DISTINCT signal_type FROM signal_counters
      WHERE customer_id = $1 AND ($2::text[] IS NULL OR signal_type = ANY($2::text[]))
        AND strpos(signal_type, '/') = 0) t  -- classified messages are no signals
CROSS JOIN LATERAL (
    SELECT signal_id, signal_type, occurred_at FROM customer_signals
    WHERE customer_id = $1 AND signal_type = t.signal_type
    ORDER BY occurred_at DESC, signal_id DESC LIMIT $3
) s
ORDER BY s.occurred_at DESC, s.signal_id DESC LIMIT $3
"""
# Each stream read backwards on its primary key (stream, version) until it has `limit`.
_LAST_DECISIONS = """
SELECT e.position, e.stream_id, e.version, e.topic, e.occurred_at, e.payload
FROM unnest($1::uuid[]) AS c(id)
CROSS JOIN LATERAL (
    SELECT position, stream_id, version, topic, occurred_at, payload FROM events
    WHERE stream_id = c.id AND topic = ANY($2::text[])
    ORDER BY version DESC LIMIT $3
) e
ORDER BY e.position DESC LIMIT $3
"""


class PostgresContextReads:
    """The ContextReads port over customer_signals, signal_counters and the events table."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def last_signals(
        self, customer_id: UUID, types: Collection[str] | None, limit: int
    ) -> list[RecentSignal]:
        rows = await self.pool.fetch(
            _LAST_SIGNALS, customer_id, None if types is None else list(types), limit
        )
        return [RecentSignal(r["signal_id"], r["signal_type"], r["occurred_at"]) for r in rows]

    async def last_decisions(
        self, customer_ids: Collection[UUID], topics: Collection[str], limit: int
    ) -> list[RecordedEvent]:
        rows = await self.pool.fetch(_LAST_DECISIONS, list(customer_ids), list(topics), limit)
        return await self.events.recorded(self.pool, rows)
