"""Streams of events in one table: appended with optimistic concurrency, read as a global log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from adapters.postgres.codec import EventCodec
from domain.signals.aggregate import Signal
from ports.customers import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence
    from datetime import datetime

    from eventsourcing.domain import Aggregate, CanMutateAggregate

__all__ = ["LogPage", "LogPosition", "PostgresEventStore", "RecordedEvent", "subject_of"]

_APPEND_ONE = """
INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_APPEND_MANY = """
INSERT INTO events (stream_id, version, topic, class_version, occurred_at, subject_id, payload)
SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::int2[], $5::timestamptz[],
                     $6::uuid[], $7::bytea[])
"""
_LOAD = """
SELECT stream_id, version, topic, class_version, occurred_at, payload
FROM events WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id, version
"""
_READ_LOG = """
SELECT transaction_id::text::bigint AS transaction_id, position, stream_id, version, topic,
       occurred_at, payload
FROM events
WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY transaction_id, position
LIMIT $3
"""
_RETRYABLE = (
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


def subject_of(aggregate: Aggregate) -> UUID:
    """The customer an aggregate's events are about."""
    if isinstance(aggregate, Signal):
        return aggregate.customer_id
    return aggregate.id


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """A place in the global log: events are read in (transaction_id, position) order."""

    transaction_id: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class LogPage:
    events: list[RecordedEvent]
    next: LogPosition


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored, decoded to plain values."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    recorded_at: datetime
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return self.topic.rpartition(".")[2]


class PostgresEventStore:
    """Appends and loads aggregates' events; the caller owns the connection and transaction."""

    def __init__(self, codec: EventCodec | None = None) -> None:
        self.codec = codec or EventCodec()

    async def append(
        self,
        conn: asyncpg.Connection,
        aggregates: Iterable[Aggregate] = (),
        events: Iterable[CanMutateAggregate[UUID]] = (),
    ) -> None:
        """Appends the aggregates' pending events and loose events (of one-event aggregates)."""
        rows: list[tuple[Any, ...]] = []
        for aggregate in aggregates:
            subject = subject_of(aggregate)
            for event in aggregate.collect_events():
                rows.append(self._row(event, subject))
        for event in events:
            rows.append(self._row(event, getattr(event, "customer_id", event.originator_id)))
        if not rows:
            return
        try:
            if len(rows) == 1:
                await conn.execute(_APPEND_ONE, *rows[0])
            else:
                await conn.execute(
                    _APPEND_MANY, *(list(column) for column in zip(*rows, strict=True))
                )
        except _RETRYABLE as error:
            raise ConcurrencyConflict(str(error)) from error

    def _row(self, event: CanMutateAggregate[UUID], subject: UUID) -> tuple[Any, ...]:
        e = self.codec.encode(event)
        return (e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, subject, e.payload)

    async def load(
        self, conn: asyncpg.Connection | asyncpg.Pool, stream_ids: Collection[UUID]
    ) -> dict[UUID, Aggregate]:
        loaded: dict[UUID, Any] = {}
        for row in await conn.fetch(_LOAD, list(stream_ids)):
            event: CanMutateAggregate[UUID] = self.codec.decode(*row)
            loaded[row[0]] = event.mutate(loaded.get(row[0]))
        return loaded

    async def read_log(
        self, conn: asyncpg.Connection | asyncpg.Pool, after: LogPosition, limit: int = 1000
    ) -> LogPage:
        """Events committed after `after`, in one order every reader sees the same.

        Only transactions older than every one still running are read, so an event whose
        transaction commits late cannot be overtaken and skipped by a reader's position.
        """
        rows = await conn.fetch(_READ_LOG, str(after.transaction_id), after.position, limit)
        if not rows:
            return LogPage([], after)
        last = rows[-1]
        return LogPage(
            self.to_recorded(rows), LogPosition(last["transaction_id"], last["position"])
        )

    def to_recorded(self, rows: Sequence[asyncpg.Record]) -> list[RecordedEvent]:
        return [
            RecordedEvent(
                row["position"],
                row["stream_id"],
                row["version"],
                row["topic"],
                row["occurred_at"],
                self.codec.to_plain(row["topic"], row["payload"]),
            )
            for row in rows
        ]
