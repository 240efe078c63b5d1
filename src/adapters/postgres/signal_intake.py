"""Received signals in the event log: one statement a batch, duplicates left out by the key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import msgspec

from domain.signals.aggregate import signal_id_for
from domain.signals.intake import INTAKE_ID_PREFIX, RECEIVED_TOPIC, REFUSED_TOPIC
from ports.intake import Attribution

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
# The common case, where no id was seen before: a plain insert, a quarter less of PostgreSQL's
# CPU than the statement above. A repeated id fails it whole, and the batch goes again by the
# statement above.
_RECEIVE_NEW = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload)
SELECT md5($5 || event_id)::uuid AS stream_id, 1, $3, $4, payload
FROM unnest($1::text[], $2::bytea[]) AS s(event_id, payload)
ORDER BY stream_id
"""
_ATTEMPTS = 3
_REFUSE = """
INSERT INTO events (stream_id, version, topic, occurred_at, payload)
VALUES ($1, 2, $2, $3, $4)
ON CONFLICT (stream_id, version) DO NOTHING
"""
_REFUSED = "SELECT stream_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 2"
# Each signal's Signal.Recorded (version 1 of its signal stream, about its customer) or its
# Signal.Refused (version 2 of its intake stream).
_ATTRIBUTED = """
SELECT s.event_id, recorded.stream_id IS NOT NULL, recorded.subject_id, refused.payload
FROM unnest($1::text[], $2::uuid[]) AS s(event_id, signal_id)
LEFT JOIN events recorded ON recorded.stream_id = s.signal_id AND recorded.version = 1
LEFT JOIN events refused
    ON refused.stream_id = md5($3 || s.event_id)::uuid AND refused.version = 2
WHERE recorded.stream_id IS NOT NULL OR refused.stream_id IS NOT NULL
"""


class _Refusal(msgspec.Struct):
    reason: str


_encode_refusal = msgspec.json.Encoder().encode
_decode_refusal = msgspec.json.Decoder(_Refusal).decode


class PostgresSignalIntake:
    """Commits received signals straight into the log; attribution follows it."""

    def __init__(self, pool: asyncpg.Pool, on_committed: Callable[[], None] | None = None) -> None:
        self.pool = pool
        self.on_committed = on_committed
        # After a repeated id, batches leave repeats out by key until one comes with none: a
        # producer retrying, or a redelivery after a crash, sends many of them in a row.
        self._repeats_likely = False

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        first: dict[str, int] = {}  # a repeat within the batch is a duplicate of the first
        for place, signal in enumerate(signals):
            first.setdefault(signal.event_id, place)
        if not first:
            return []
        places_of_first = list(first.values())
        payloads = [signals[place].payload for place in places_of_first]
        places = await self._receive(list(first), payloads, at)
        new = [False] * len(signals)
        for place in places:
            new[places_of_first[place]] = True
        if places and self.on_committed is not None:
            self.on_committed()
        return new

    async def _receive(self, ids: list[str], payloads: list[bytes], at: datetime) -> list[int]:
        """The places (0-based) of the signals written, the ones whose id was new."""
        args = (ids, payloads, RECEIVED_TOPIC, at, INTAKE_ID_PREFIX)
        careful = self._repeats_likely
        attempt = 1
        while True:
            try:
                if not careful:
                    await self.pool.execute(_RECEIVE_NEW, *args)
                    return list(range(len(ids)))
                rows = await self.pool.fetch(_RECEIVE, *args)
            except asyncpg.UniqueViolationError:
                if careful:
                    raise  # not a repeated id: the statement above leaves those out
                careful = self._repeats_likely = True
                continue
            except asyncpg.DeadlockDetectedError:
                if attempt == _ATTEMPTS:
                    raise
                attempt += 1
                continue
            if len(rows) == len(ids):
                self._repeats_likely = False
            return [row[0] - 1 for row in rows]

    async def refuse(self, intake_id: UUID, reason: str, at: datetime) -> None:
        payload = _encode_refusal(_Refusal(reason))
        await self.pool.execute(_REFUSE, intake_id, REFUSED_TOPIC, at, payload)
        if self.on_committed is not None:
            self.on_committed()

    async def refused(self, intake_ids: Collection[UUID]) -> set[UUID]:
        return {row[0] for row in await self.pool.fetch(_REFUSED, list(intake_ids))}

    async def attributed(self, event_ids: Collection[str]) -> dict[str, Attribution]:
        ids = list(event_ids)
        signal_ids = [signal_id_for(event_id) for event_id in ids]
        rows = await self.pool.fetch(_ATTRIBUTED, ids, signal_ids, INTAKE_ID_PREFIX)
        return {
            event_id: Attribution(customer_id)
            if recorded
            else Attribution(refused=_decode_refusal(refusal).reason)
            for event_id, recorded, customer_id, refusal in rows
        }
