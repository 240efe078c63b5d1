"""The log as `chorus audit verify` reads it: one read-only snapshot, customers' streams one
at a time through a cursor, so no more than one customer's stream is held at once."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, cast

from adapters.postgres.codec import EventCodec
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.policy.rule_book import RULE_BOOK_ID
from ports.verification import LogSize

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

__all__ = ["PostgresVerifiedLog", "streams_of"]

_CUSTOMER = Customer.stored_as.name + ".%"
_QUEUED = topic_of(Message.Queued)
_COLUMNS = "stream_id, version, topic, class_version, occurred_at, payload"
_SIZE = """
SELECT count(*), count(*) FILTER (WHERE topic LIKE $1), count(*) FILTER (WHERE topic = $2)
FROM events
"""
_STREAM = f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"
_QUEUED_MESSAGES = f"SELECT {_COLUMNS} FROM events WHERE topic = $1 ORDER BY position"
_PREFETCH = 2_000


async def _opened(
    conn: asyncpg.Connection, codec: EventCodec, rows: list[asyncpg.Record]
) -> list[CanMutateAggregate[UUID]]:
    """The rows decoded, the keys that sealed their personal values loaded first."""
    await codec.keys.load_for(conn, (row[5] for row in rows))
    decode = codec.decode
    return [decode(*row) for row in rows]


async def streams_of(
    conn: asyncpg.Connection, codec: EventCodec, topics: str
) -> AsyncIterator[list[CanMutateAggregate[UUID]]]:
    """Each stream whose events' topics are `LIKE topics`, whole and in order, one at a time
    (through a cursor: `conn` must be in a transaction)."""
    query = f"SELECT {_COLUMNS} FROM events WHERE topic LIKE $1 ORDER BY stream_id, version"
    rows: list[asyncpg.Record] = []
    current = None
    async for row in conn.cursor(query, topics, prefetch=_PREFETCH):
        if row[0] != current:
            if rows:
                yield await _opened(conn, codec, rows)
            rows, current = [], row[0]
        rows.append(row)
    if rows:
        yield await _opened(conn, codec, rows)


class _Snapshot:
    def __init__(self, conn: asyncpg.Connection, codec: EventCodec) -> None:
        self.conn = conn
        self.codec = codec

    async def size(self) -> LogSize:
        row = await self.conn.fetchrow(_SIZE, _CUSTOMER, _QUEUED)
        assert row is not None
        return LogSize(row[0], row[1], row[2])

    async def _opened(self, rows: list[asyncpg.Record]) -> list[CanMutateAggregate[UUID]]:
        return await _opened(self.conn, self.codec, rows)

    async def rule_book(self) -> list[CanMutateAggregate[UUID]]:
        return await self._opened(await self.conn.fetch(_STREAM, RULE_BOOK_ID))

    def customer_streams(self) -> AsyncIterator[list[CanMutateAggregate[UUID]]]:
        return streams_of(self.conn, self.codec, _CUSTOMER)

    async def queued_messages(self) -> AsyncIterator[CanMutateAggregate[UUID]]:
        rows: list[asyncpg.Record] = []
        async for row in self.conn.cursor(_QUEUED_MESSAGES, _QUEUED, prefetch=_PREFETCH):
            rows.append(row)
            if len(rows) == _PREFETCH:
                for event in await self._opened(rows):
                    yield event
                rows = []
        for event in await self._opened(rows):
            yield event


class PostgresVerifiedLog:
    def __init__(self, pool: asyncpg.Pool, codec: EventCodec | None = None) -> None:
        self.pool = pool
        self.codec = codec or EventCodec()

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_Snapshot]:
        async with self.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                yield _Snapshot(conn, self.codec)
