"""Received signals in the event log: one statement a batch, duplicates left out by the key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.signal_traces import keep_signal_traces
from domain.signals.aggregate import signal_id_for
from domain.signals.intake import INTAKE_ID_PREFIX, RECEIVED_TOPIC, REFUSED_TOPIC
from ports.intake import Attribution

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    import asyncpg

    from domain.signals.document import ReceivedSignal

__all__ = ["PostgresSignalIntake"]

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


_WROTE_RECEIVED = frozenset({RECEIVED_TOPIC})  # what a commit wrote, for the commit bell
_WROTE_REFUSED = frozenset({REFUSED_TOPIC})
_encode_refusal = msgspec.json.Encoder().encode
_decode_refusal = msgspec.json.Decoder(_Refusal).decode


class PostgresSignalIntake:
    """Commits received signals straight into the log; attribution follows it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        on_committed: Callable[[frozenset[str]], None] | None = None,
        events: PostgresEventStore | None = None,
    ) -> None:
        self.pool = pool
        self.on_committed = on_committed
        self.events = events or PostgresEventStore()

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        first: dict[str, int] = {}  # a repeat within the batch is a duplicate of the first
        for place, signal in enumerate(signals):
            first.setdefault(signal.event_id, place)
        if not first:
            return []
        places_of_first = list(first.values())
        payloads = await self._sealed([signals[place] for place in places_of_first])
        await keep_signal_traces(self.pool, first)
        places = await self.events.append_first(
            self.pool, RECEIVED_TOPIC, INTAKE_ID_PREFIX, list(first), payloads, at
        )
        new = [False] * len(signals)
        for place in places:
            new[places_of_first[place]] = True
        if places and self.on_committed is not None:
            self.on_committed(_WROTE_RECEIVED)
        return new

    async def _sealed(self, signals: list[ReceivedSignal]) -> list[bytes]:
        """Their payloads, their personal values sealed with the keys of their first identities."""
        codec = self.events.codec
        owners = {s.owner for s in signals if s.owner is not None}
        key_ids = await codec.keys.for_identities(self.pool, owners) if owners else {}
        if not owners:
            return [s.payload for s in signals]
        owned = [
            (s.payload, key_ids[s.owner], {"id": s.event_id, **s.kept})
            for s in signals
            if s.owner is not None
        ]
        sealed = iter(codec.sealed_documents(RECEIVED_TOPIC, owned))
        return [s.payload if s.owner is None else next(sealed) for s in signals]

    async def refuse(self, intake_id: UUID, reason: str, at: datetime) -> None:
        payload = _encode_refusal(_Refusal(reason))
        await self.events.append_payload_once(self.pool, intake_id, 2, REFUSED_TOPIC, at, payload)
        if self.on_committed is not None:
            self.on_committed(_WROTE_REFUSED)

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
