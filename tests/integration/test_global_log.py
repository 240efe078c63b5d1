from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.postgres.event_store import LogPosition, PostgresEventStore
from adapters.postgres.projections import READABLE_END
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim
from domain.policy.rule_book import RuleBook
from domain.segments.aggregate import Membership
from domain.signals.aggregate import Signal, SignalReport

if TYPE_CHECKING:
    import asyncpg

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def new_customer(email: str) -> Customer:
    return Customer.register(uuid4(), T0, (IdentityClaim(Identity("email", email)),))


class TestFollowingTheGlobalLog:
    async def test_an_event_that_commits_late_is_not_skipped(self, pool: asyncpg.Pool) -> None:
        store = PostgresEventStore()
        slow, fast = new_customer("slow@example.org"), new_customer("fast@example.org")
        async with pool.acquire() as slow_conn, slow_conn.transaction():
            await store.append(slow_conn, [slow])  # takes its place first, commits last
            await store.append(pool, [fast])  # type: ignore[arg-type]
            page = await store.read_log(pool, LogPosition())
            assert page.events == []  # the fast one waits behind the open transaction
        first = await store.read_log(pool, LogPosition())
        assert [e.stream_id for e in first.events] == [slow.id, fast.id]
        assert (await store.read_log(pool, first.next)).events == []

    async def test_pages_continue_where_the_last_one_stopped(self, pool: asyncpg.Pool) -> None:
        store = PostgresEventStore()
        customers = [new_customer(f"c{n}@example.org") for n in range(5)]
        for customer in customers:
            await store.append(pool, [customer])  # type: ignore[arg-type]
        seen, position = [], LogPosition()
        while page := await store.read_log(pool, position, limit=2):
            if not page.events:
                break
            seen += [e.stream_id for e in page.events]
            position = page.next
        assert seen == [c.id for c in customers]


class TestFilingEventsUnderTheirCustomer:
    async def test_a_customer_and_the_signals_and_memberships_about_it_are_filed_under_it(
        self, pool: asyncpg.Pool
    ) -> None:
        customer = new_customer("ana@example.org")
        report = SignalReport("o-1", "order.placed", T0, ())
        entered = Membership.Entered(  # type: ignore[call-arg]
            originator_id=uuid4(),
            originator_version=1,
            timestamp=T0,
            segment_id=uuid4(),
            segment_key="buyers",
            segment_version=1,
            customer_id=customer.id,
        )
        await PostgresEventStore().append(
            pool,  # type: ignore[arg-type]
            [customer],
            [Signal.recorded(report, customer.id, T0), entered],
        )
        rows = await pool.fetch("SELECT stream_id, subject_id FROM events")
        assert dict(rows) == {
            customer.id: customer.id,
            report.signal_id: customer.id,
            entered.originator_id: customer.id,
        }

    async def test_a_definition_is_filed_under_no_customer(self, pool: asyncpg.Pool) -> None:
        await PostgresEventStore().append(pool, [RuleBook.open(T0)])  # type: ignore[arg-type]
        assert await pool.fetchval("SELECT count(*) FROM events WHERE subject_id IS NULL") == 1


class TestFindingTheEndOfTheLog:
    async def test_the_readable_end_is_read_off_the_index_without_sorting_the_log(
        self, pool: asyncpg.Pool
    ) -> None:
        for n in range(3):
            await PostgresEventStore().append(pool, [new_customer(f"e{n}@example.org")])  # type: ignore[arg-type]
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + READABLE_END))
        assert "Index" in plan
        assert "Sort" not in plan  # a sort would read the whole log below the horizon
