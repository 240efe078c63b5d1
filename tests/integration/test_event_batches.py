from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import msgspec
import pytest

from adapters.postgres.codec import EventCodec
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.messages import OUTBOX
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim
from domain.policy.rule_book import RuleBook
from domain.signals.aggregate import Signal, SignalReport
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    import asyncpg
    from eventsourcing.domain import CanMutateAggregate

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)
_COLUMNS = "stream_id, version, topic, class_version, occurred_at, subject_id, payload"


def new_customer(email: str, at: datetime = T0) -> Customer:
    return Customer.register(uuid4(), at, (IdentityClaim(Identity("email", email)),))


def signal(customer_id: Any, n: int, at: datetime = T0) -> Signal.Recorded:
    report = SignalReport(f"s-{n}", "page.viewed", T0, (), {"page": f"/p/{n}"}, "web")
    return Signal.recorded(report, customer_id, at)


def expected(event: CanMutateAggregate[Any], subject: Any) -> tuple[Any, ...]:
    e = EventCodec().encode(event)
    plain = msgspec.json.decode(e.payload)
    return (e.stream_id, e.version, e.topic, e.class_version, e.occurred_at, subject, plain)


async def stored(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    """The rows, their payloads read as plain values (personal ones opened)."""
    codec = EventCodec()
    rows = await pool.fetch(f"SELECT {_COLUMNS} FROM events ORDER BY position")
    await codec.keys.load_for(pool, (row["payload"] for row in rows))
    return [(*tuple(row)[:6], codec.to_plain(row["topic"], row["payload"])) for row in rows]


class TestAppendingABatch:
    async def test_rows_that_share_some_columns_are_stored_as_one_at_a_time(
        self, pool: asyncpg.Pool
    ) -> None:
        ana, bea = new_customer("ana@example.org"), new_customer("bea@example.org")
        bea.update_profile(T0 + timedelta(seconds=1), {"first_name": "Bea"}, {})
        rules = RuleBook.open(T0)
        signals = [signal(ana.id, 1), signal(bea.id, 2), signal(ana.id, 3, T0 + timedelta(1))]
        rows = [expected(event, ana.id) for event in ana.pending_events]
        rows += [expected(event, bea.id) for event in bea.pending_events]
        rows += [expected(event, None) for event in rules.pending_events]
        rows += [expected(event, event.customer_id) for event in signals]
        await PostgresEventStore().append(pool, [ana, bea, rules], signals)  # type: ignore[arg-type]
        assert await stored(pool) == rows

    async def test_rows_that_share_every_column_but_their_stream_and_body_are_stored_so(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = uuid4()
        signals = [signal(customer_id, n) for n in range(5)]
        await PostgresEventStore().append(pool, events=signals)  # type: ignore[arg-type]
        assert await stored(pool) == [expected(event, customer_id) for event in signals]

    async def test_rows_about_no_customer_are_stored_with_none(self, pool: asyncpg.Pool) -> None:
        books = [RuleBook(id=uuid4(), timestamp=T0), RuleBook(id=uuid4(), timestamp=T0)]
        rows = [expected(event, None) for book in books for event in book.pending_events]
        await PostgresEventStore().append(pool, books)  # type: ignore[arg-type]
        assert await stored(pool) == rows

    async def test_a_batch_with_a_place_taken_stores_nothing_and_conflicts(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = uuid4()
        taken = signal(customer_id, 1)
        await PostgresEventStore().append(pool, events=[taken])  # type: ignore[arg-type]
        with pytest.raises(ConcurrencyConflict):
            await PostgresEventStore().append(
                pool,  # type: ignore[arg-type]
                events=[signal(customer_id, 0), signal(customer_id, 1), signal(customer_id, 2)],
            )
        assert await stored(pool) == [expected(taken, customer_id)]


class TestCopyingABigBatchIn:
    """In a transaction, a batch of 100 events or more is copied in (binary `COPY`)."""

    async def test_a_big_batch_is_stored_as_an_insert_would_store_it(
        self, pool: asyncpg.Pool
    ) -> None:
        customers = [new_customer(f"c{n}@example.org") for n in range(60)]
        signals = [signal(customers[n % 60].id, n) for n in range(90)]
        rows = [expected(e, c.id) for c in customers for e in c.pending_events]
        rows += [expected(event, event.customer_id) for event in signals]
        async with pool.acquire() as conn, conn.transaction():
            await PostgresEventStore().append(conn, customers, signals)  # type: ignore[arg-type]
        assert len(rows) >= 150
        assert await stored(pool) == rows

    async def test_a_big_batch_with_a_place_taken_stores_nothing_and_conflicts(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id = uuid4()
        taken = signal(customer_id, 7)
        await PostgresEventStore().append(pool, events=[taken])  # type: ignore[arg-type]
        with pytest.raises(ConcurrencyConflict):
            async with pool.acquire() as conn, conn.transaction():
                await PostgresEventStore().append(
                    conn,  # type: ignore[arg-type]
                    events=[signal(customer_id, n) for n in range(150)],
                )
        assert await stored(pool) == [expected(taken, customer_id)]

    async def test_a_big_batch_with_side_rows_outside_a_transaction_stores_all_or_nothing(
        self, pool: asyncpg.Pool
    ) -> None:
        customer_id, taken = uuid4(), uuid4()
        await pool.execute("INSERT INTO outbox (message_id, channel) VALUES ($1, 'email')", taken)
        clashing = {OUTBOX: [(uuid4(), "email", None), (taken, "email", None)]}
        async with pool.acquire() as conn:
            with pytest.raises(ConcurrencyConflict):
                await PostgresEventStore().append(
                    conn,  # type: ignore[arg-type]
                    events=[signal(customer_id, n) for n in range(150)],
                    side_rows=clashing,
                )
            assert not conn.is_in_transaction()
        assert await stored(pool) == []
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
        signals = [signal(customer_id, n) for n in range(150)]
        fresh = {OUTBOX: [(uuid4(), "email", None)]}
        async with pool.acquire() as conn:
            await PostgresEventStore().append(conn, events=signals, side_rows=fresh)  # type: ignore[arg-type]
        assert await stored(pool) == [expected(event, customer_id) for event in signals]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
