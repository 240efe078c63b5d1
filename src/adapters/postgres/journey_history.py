"""The event log read back for campaign dry runs: signals and segment entries, as domain events."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from adapters.postgres.event_store import PostgresEventStore
from domain.catalog import topic_of
from domain.segments.aggregate import Membership
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from ports.journey_history import Happening

__all__ = ["PostgresJourneyHistory"]

_SIGNAL = topic_of(Signal.Recorded)
_ENTERED = topic_of(Membership.Entered)
_HAPPENINGS = [_SIGNAL, _ENTERED, topic_of(Membership.Exited)]

# Payloads are JSON: the type of a signal and the key of a segment are read in place, so only
# the customers are sent back, and a period of many signals is not decoded to count them.
_ENTERING = """
SELECT subject_id FROM events
WHERE occurred_at >= $1 AND occurred_at <= $2 AND subject_id IS NOT NULL
  AND ((topic = $3 AND convert_from(payload, 'UTF8')::jsonb ->> 'signal_type' = ANY($4::text[]))
    OR (topic = $5 AND convert_from(payload, 'UTF8')::jsonb ->> 'segment_key' = ANY($6::text[])))
GROUP BY subject_id
ORDER BY min(position)
LIMIT $7
"""

_LIVES = """
SELECT stream_id, version, topic, class_version, occurred_at, payload FROM events
WHERE subject_id = ANY($1::uuid[]) AND topic = ANY($2::text[]) AND occurred_at <= $3
ORDER BY occurred_at, position
"""


class PostgresJourneyHistory:
    """Reads the `events` table; never writes."""

    def __init__(self, pool: asyncpg.Pool, events: PostgresEventStore | None = None) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()

    async def entering(
        self,
        since: datetime,
        until: datetime,
        signal_types: Collection[str],
        segment_keys: Collection[str],
        max_customers: int,
    ) -> list[UUID]:
        if not signal_types and not segment_keys:
            return []
        rows = await self.pool.fetch(
            _ENTERING,
            since,
            until,
            _SIGNAL,
            list(signal_types),
            _ENTERED,
            list(segment_keys),
            max_customers,
        )
        return [row[0] for row in rows]

    async def lives(self, customers: Collection[UUID], until: datetime) -> list[Happening]:
        if not customers:
            return []
        rows = await self.pool.fetch(_LIVES, list(customers), _HAPPENINGS, until)
        await self.events.open_keys(self.pool, (row[5] for row in rows))
        return [cast("Happening", self.events.codec.decode(*row)) for row in rows]
