from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest

from adapters.postgres.event_store import LogPosition, PostgresEventStore
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim

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
