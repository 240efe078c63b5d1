"""A read model's pages commit without waiting for the disk; a projection that owns no tables
(a process: it records events or publishes them) waits for it (ADR 0029)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import uuid4

import asyncpg
import pytest

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.event_store import PostgresEventStore
from adapters.postgres.projections import ProjectionRunner
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from ports.projections import LoggedEvent

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class CommitSettings:
    """Notes, for each page, whether its transaction waits for the disk at commit; fails its
    first `failures` pages (a page after a failure is read under the lock, not ahead)."""

    topics = CustomerDirectory.topics

    def __init__(self, name: str, owns_tables: bool, failures: int = 0) -> None:
        self.name = name
        self.tables = ("commit_settings",) if owns_tables else ()
        self.failures = failures

    def writing_to(self, suffix: str) -> CommitSettings:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("not this time")
        setting = await conn.fetchval("SELECT current_setting('synchronous_commit')")
        await conn.execute("INSERT INTO commit_settings VALUES ($1, $2)", self.name, setting)


async def register(pool: asyncpg.Pool, n: int) -> None:
    claim = IdentityClaim(Identity("email", f"c{n}@example.org"))
    customer = Customer.register(uuid4(), T0, (claim,))
    await PostgresEventStore().append(pool, [customer])  # type: ignore[arg-type]


async def settings(pool: asyncpg.Pool, name: str) -> set[str]:
    rows = await pool.fetch("SELECT setting FROM commit_settings WHERE name = $1", name)
    return {row[0] for row in rows}


async def followed(runner: ProjectionRunner, pool: asyncpg.Pool, pages: int) -> None:
    """Runs the runner's loop until `pages` pages were noted."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        for _ in range(600):
            if await pool.fetchval("SELECT count(*) FROM commit_settings") >= pages:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the pages were not applied in 30 s")
    finally:
        stop.set()
        await task


@pytest.fixture
async def durable(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool whose sessions wait for the disk at commit, whatever the server's default (the
    suite's embedded servers do not)."""
    made = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, server_settings={"synchronous_commit": "on"}
    )
    yield made
    await made.close()


class TestUnhurriedCommits:
    async def test_a_read_models_pages_do_not_wait_for_the_disk_and_a_process_pages_do(
        self, durable: asyncpg.Pool
    ) -> None:
        pool = durable
        await pool.execute("CREATE TABLE commit_settings (name text, setting text)")
        await register(pool, 1)
        read_model = CommitSettings("read_model", owns_tables=True)
        process = CommitSettings("process", owns_tables=False)
        runner = ProjectionRunner(pool, [read_model, process])  # type: ignore[list-item]
        await followed(runner, pool, 2)
        await register(pool, 2)  # a page read ahead by the running loop
        runner.wake()
        await followed(runner, pool, 4)
        assert await settings(pool, "read_model") == {"off"}
        assert await settings(pool, "process") == {"on"}

    async def test_a_read_models_page_after_a_failure_does_not_wait_for_the_disk_either(
        self, durable: asyncpg.Pool
    ) -> None:
        pool = durable
        await pool.execute("CREATE TABLE commit_settings (name text, setting text)")
        await register(pool, 1)
        read_model = CommitSettings("read_model", owns_tables=True, failures=1)
        runner = ProjectionRunner(pool, [read_model], attempts=3)  # type: ignore[list-item]
        await runner.setup()
        failed = None
        for _ in range(600):  # until the event is readable: no older transaction is open
            try:
                await runner.catch_up()
            except RuntimeError as error:
                failed = str(error)
                break
            await asyncio.sleep(0.05)
        assert failed == "not this time"
        await runner.catch_up()
        assert await settings(pool, "read_model") == {"off"}
