"""Received signals in the event log: one statement a batch, duplicates left out by the key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from domain.signals.intake import INTAKE_ID_PREFIX, RECEIVED_TOPIC

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from ports.intake import ReceivedSignal

__all__ = ["PostgresSignalIntake"]

# A producer id seen before hits the stream's primary key and is left out; the statement
# returns the places of the ones it wrote. Concurrent batches with the same new id: the
# second waits for the first to commit, then leaves it out. Rows go in stream order, so two
# batches sharing ids wait for each other in one order and cannot deadlock.
_RECEIVE = """
WITH received AS (
    SELECT place, md5($5 || event_id)::uuid AS stream_id, payload
    FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS s(event_id, payload, place)
), written AS (
    INSERT INTO events (stream_id, version, topic, occurred_at, payload)
    SELECT stream_id, 1, $3, $4, payload FROM received ORDER BY stream_id
    ON CONFLICT (stream_id, version) DO NOTHING
    RETURNING stream_id
)
SELECT received.place FROM received JOIN written USING (stream_id)
"""
_ATTEMPTS = 3
_ATTRIBUTED = """
SELECT stream_id, subject_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1
"""


class PostgresSignalIntake:
    """Commits received signals straight into the log; attribution follows it."""

    def __init__(self, pool: asyncpg.Pool, on_committed: Callable[[], None] | None = None) -> None:
        self.pool = pool
        self.on_committed = on_committed

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        first: dict[str, int] = {}  # a repeat within the batch is a duplicate of the first
        for place, signal in enumerate(signals):
            first.setdefault(signal.event_id, place)
        if not first:
            return []
        places = list(first.values())
        args = (
            list(first),
            [signals[place].payload for place in places],
            RECEIVED_TOPIC,
            at,
            INTAKE_ID_PREFIX,
        )
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                rows = await self.pool.fetch(_RECEIVE, *args)
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == _ATTEMPTS:
                    raise
        new = [False] * len(signals)
        for row in rows:
            new[places[row[0] - 1]] = True
        if rows and self.on_committed is not None:
            self.on_committed()
        return new

    async def attributed(self, signal_ids: Collection[UUID]) -> dict[UUID, UUID]:
        rows = await self.pool.fetch(_ATTRIBUTED, list(signal_ids))
        return {row[0]: row[1] for row in rows}
