"""Customers on PostgreSQL: their streams, the identity index and merges, in one transaction."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import msgspec

from adapters.postgres.aggregate_cache import AggregateCache
from adapters.postgres.event_store import PostgresEventStore, RecordedEvent, SideTable
from adapters.postgres.messages import (
    FALLBACKS,
    MESSAGES,
    OUTBOX,
    fallback_row,
    message_row,
    outbox_row,
)
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity
from domain.message.aggregate import Message
from domain.policy.decision import SendRequest
from ports.customers import ConcurrencyConflict, DueMessage, EarlierRequest
from ports.delivery import Delivery, FallbackPlan

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Collection, Mapping
    from datetime import datetime
    from uuid import UUID

    from asyncpg.transaction import Transaction
    from eventsourcing.domain import Aggregate, CanMutateAggregate

__all__ = ["PostgresCustomerStore", "PostgresCustomerTransaction", "Timeline"]

_RESOLVE = """
SELECT i.type, i.value, i.customer_id
FROM identities i JOIN unnest($1::text[], $2::text[]) AS q(type, value) USING (type, value)
"""
_CLAIM = """
INSERT INTO identities (type, value, customer_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[])
ON CONFLICT DO NOTHING
RETURNING type, value
"""
_EXISTING = "SELECT stream_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1"
_OLDEST_FIRST = """
SELECT stream_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1 ORDER BY position
"""
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


_request_decoder = msgspec.json.Decoder(SendRequest)
_DECISIONS = SideTable(
    "INSERT INTO decisions (decision_id, message_id, customer_id, stream_version)",
    ("uuid", "uuid", "uuid", "int4"),
)
_REQUESTS = SideTable(
    "INSERT INTO message_requests"
    " (idempotency_key, message_id, customer_id, decision_id, fingerprint)",
    ("text", "uuid", "uuid", "uuid", "bytea"),
)
_DEFERRED = SideTable(
    "INSERT INTO deferred_messages"
    " (message_id, customer_id, due_at, request, origin, priority, delivery)",
    ("uuid", "uuid", "timestamptz", "bytea", "text", "int4", "bytea"),
    "ON CONFLICT (message_id) DO UPDATE SET due_at = excluded.due_at",
)
_delivery_decoder = msgspec.json.Decoder(Delivery)


@dataclass(frozen=True, slots=True)
class Timeline:
    events: list[RecordedEvent]
    next_before: int | None


class PostgresCustomerTransaction:
    """One unit of work; its pending events are appended at commit.

    BEGIN is sent only before the first statement: a command whose aggregate came from the
    cache writes its events in one statement, which commits atomically on its own.
    """

    def __init__(
        self,
        conn: asyncpg.Connection,
        events: PostgresEventStore,
        cache: AggregateCache,
        locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] | None = None,
    ) -> None:
        self._conn = conn
        self.events = events
        self.cache = cache
        self.locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = (
            weakref.WeakValueDictionary() if locks is None else locks
        )
        self.held: list[asyncio.Lock] = []
        self.lent: dict[UUID, Aggregate] = {}
        self.to_save: dict[UUID, Aggregate] = {}
        self.to_record: list[CanMutateAggregate[UUID]] = []
        self.side_rows: dict[SideTable, list[tuple[Any, ...]]] = {
            _DECISIONS: [],
            _REQUESTS: [],
            _DEFERRED: [],
            OUTBOX: [],
            MESSAGES: [],
            FALLBACKS: [],
        }
        self.transaction: Transaction | None = None
        self._pending_begin = False

    @property
    def conn(self) -> asyncpg.Connection:
        if self.transaction is None:
            self.transaction = self._conn.transaction()
            self._pending_begin = True
        return self._conn

    async def _begun(self) -> asyncpg.Connection:
        conn = self.conn
        if self._pending_begin:
            self._pending_begin = False
            assert self.transaction is not None
            await self.transaction.start()
        return conn

    async def existing_signals(self, signal_ids: Collection[UUID]) -> set[UUID]:
        conn = await self._begun()
        rows = await conn.fetch(_EXISTING, list(signal_ids))
        return {row[0] for row in rows}

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        if not identities:
            return {}
        types = [i.type for i in identities]
        values = [i.value for i in identities]
        conn = await self._begun()
        rows = await conn.fetch(_RESOLVE, types, values)
        return {Identity(row[0], row[1]): row[2] for row in rows}

    async def _queue_for(self, customer_ids: Collection[UUID]) -> None:
        """Commands on one customer in this process wait their turn instead of racing.

        Only a transaction that holds no lock yet waits, so two can never wait on each other;
        across processes the stream's version key still decides.
        """
        if self.held:
            return
        for customer_id in sorted(customer_ids):
            lock = self.locks.get(customer_id)
            if lock is None:
                lock = asyncio.Lock()
                self.locks[customer_id] = lock
            await lock.acquire()
            self.held.append(lock)

    def release(self) -> None:
        while self.held:
            self.held.pop().release()

    async def get(self, customer_ids: Collection[UUID]) -> dict[UUID, Customer]:
        await self._queue_for(customer_ids)
        found: dict[UUID, Customer] = {}
        missing: list[UUID] = []
        for customer_id in customer_ids:
            cached = self.cache.take(customer_id)
            if cached is None:
                missing.append(customer_id)
            else:
                found[customer_id] = cast("Customer", cached)
        if missing:
            loaded = await self.events.load(await self._begun(), missing)
            found.update((k, v) for k, v in loaded.items() if isinstance(v, Customer))
        self.lent.update(found)
        return found

    async def oldest_first(self, customer_ids: Collection[UUID]) -> list[UUID]:
        rows = await (await self._begun()).fetch(_OLDEST_FIRST, list(customer_ids))
        return [row[0] for row in rows]

    async def claim_identities(self, owners: Mapping[Identity, UUID]) -> None:
        ordered = sorted(owners.items())
        conn = await self._begun()
        rows = await conn.fetch(
            _CLAIM,
            [identity.type for identity, _ in ordered],
            [identity.value for identity, _ in ordered],
            [owner for _, owner in ordered],
        )
        if len(rows) != len(ordered):
            raise ConcurrencyConflict("an identity was claimed by a concurrent writer")

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        conn = await self._begun()
        await conn.execute(
            "UPDATE identities SET customer_id = $2 WHERE customer_id = $1", merged_id, survivor_id
        )
        await conn.execute(
            "UPDATE customer_merges SET survivor_id = $2 WHERE survivor_id = $1",
            merged_id,
            survivor_id,
        )
        try:
            await conn.execute(
                "INSERT INTO customer_merges (merged_id, survivor_id) VALUES ($1, $2)",
                merged_id,
                survivor_id,
            )
        except asyncpg.UniqueViolationError as error:
            raise ConcurrencyConflict("the customer was merged by a concurrent writer") from error

    async def defer(
        self,
        message_id: UUID,
        customer_id: UUID,
        due_at: datetime,
        request: SendRequest,
        origin: str,
        delivery: Delivery | None = None,
    ) -> None:
        self.side_rows[_DEFERRED].append(
            (
                message_id,
                customer_id,
                due_at,
                msgspec.json.encode(request),
                origin,
                request.priority,
                None if delivery is None else msgspec.json.encode(delivery),
            )
        )

    def enqueue(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        self.to_save[message.id] = message
        self.side_rows[OUTBOX].append(outbox_row(message))
        self.side_rows[MESSAGES].append(message_row(message))
        if fallback is not None:
            self.side_rows[FALLBACKS].append(fallback_row(message, fallback))

    async def forget_deferred(self, message_id: UUID) -> None:
        conn = await self._begun()
        await conn.execute("DELETE FROM deferred_messages WHERE message_id = $1", message_id)

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        conn = await self._begun()
        rows = await conn.fetch(
            """SELECT message_id, customer_id, request, origin, delivery FROM deferred_messages
               WHERE due_at <= $1 ORDER BY priority DESC, due_at LIMIT $2
               FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        return [
            DueMessage(
                row[0],
                row[1],
                _request_decoder.decode(row[2]),
                row[3],
                None if row[4] is None else _delivery_decoder.decode(row[4]),
            )
            for row in rows
        ]

    async def earlier_request(self, idempotency_key: str) -> EarlierRequest | None:
        # A plain read: a racing twin is caught by the key's primary key when this commits.
        conn = self._conn if self.transaction is None else await self._begun()
        row = await conn.fetchrow(
            """SELECT message_id, customer_id, decision_id, fingerprint FROM message_requests
               WHERE idempotency_key = $1""",
            idempotency_key,
        )
        return None if row is None else EarlierRequest(row[0], row[1], row[2], row[3])

    async def index_decision(
        self,
        decision_id: UUID,
        message_id: UUID,
        customer_id: UUID,
        stream_version: int,
        idempotency_key: str | None,
        fingerprint: bytes | None = None,
    ) -> None:
        self.side_rows[_DECISIONS].append((decision_id, message_id, customer_id, stream_version))
        if idempotency_key is not None:
            self.side_rows[_REQUESTS].append(
                (idempotency_key, message_id, customer_id, decision_id, fingerprint)
            )

    def save(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self.to_save[aggregate.id] = aggregate

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        self.to_record.extend(events)

    async def commit(self) -> None:
        if self.transaction is None:
            await self.events.append(
                self._conn, self.to_save.values(), self.to_record, self.side_rows
            )
            return
        await self.events.append(
            await self._begun(), self.to_save.values(), self.to_record, self.side_rows
        )
        await self.transaction.commit()

    async def rollback(self) -> None:
        if self.transaction is not None and not self._pending_begin:
            await self.transaction.rollback()

    def committed(self) -> None:
        for aggregate in (*self.lent.values(), *self.to_save.values()):
            if isinstance(aggregate, Customer):
                self.cache.give_back(aggregate)


class PostgresCustomerStore:
    """Customers by id and identity; writes go through `transaction()`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        events: PostgresEventStore | None = None,
        cache: AggregateCache | None = None,
        on_enqueued: Callable[[], None] | None = None,
        on_committed: Callable[[], None] | None = None,
    ) -> None:
        self.pool = pool
        self.events = events or PostgresEventStore()
        self.cache = cache or AggregateCache()
        self.on_enqueued = on_enqueued  # told after a commit that put messages in the outbox
        self.on_committed = on_committed  # told after every commit that appended events
        self.locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresCustomerTransaction]:
        async with self.pool.acquire() as conn:
            tx = PostgresCustomerTransaction(
                cast("asyncpg.Connection", conn), self.events, self.cache, self.locks
            )
            try:
                yield tx
                await tx.commit()
                tx.committed()
                if self.on_enqueued is not None and tx.side_rows[OUTBOX]:
                    self.on_enqueued()
                if self.on_committed is not None and (tx.to_save or tx.to_record):
                    self.on_committed()
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
                await tx.rollback()
                raise ConcurrencyConflict(str(error)) from error
            except BaseException:
                await tx.rollback()
                raise
            finally:
                tx.release()

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
        rows = await self.pool.fetch(
            """SELECT e.position, e.stream_id, e.version, e.topic, e.occurred_at, e.payload
               FROM decisions d JOIN events e
                 ON e.stream_id = d.customer_id AND e.version = d.stream_version
               WHERE d.decision_id = $1""",
            decision_id,
        )
        found = self.events.to_recorded(rows)
        return found[0] if found else None

    async def timeline(self, customer_id: UUID, *, limit: int, before: int | None) -> Timeline:
        rows = await self.pool.fetch(_TIMELINE, customer_id, before, limit + 1)
        events = self.events.to_recorded(rows[:limit])
        next_before = events[-1].position if len(rows) > limit and events else None
        return Timeline(events, next_before)
