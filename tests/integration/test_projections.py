from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import pytest

from adapters.postgres.customer_directory import CustomerDirectory
from adapters.postgres.customer_store import PostgresCustomerStore
from adapters.postgres.event_store import LogPosition, PostgresEventStore
from adapters.postgres.projections import ProjectionRunner
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.ingest_signals import IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from domain.customer.aggregate import Customer
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.signals.aggregate import SignalReport
from entrypoints.cli import main

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ports.projections import LoggedEvent

pytestmark = pytest.mark.integration
GB = IdentityNormalizer("GB")
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def claims(*identities: str) -> tuple[IdentityClaim, ...]:
    return tuple(IdentityClaim(GB.parse(i)) for i in identities)


async def register(pool: asyncpg.Pool, email: str) -> Customer:
    customer = Customer.register(uuid4(), T0, claims(f"email:{email}"))
    await PostgresEventStore().append(pool, [customer])  # type: ignore[arg-type]
    return customer


async def directory(pool: asyncpg.Pool, table: str = "customer_directory") -> list[Any]:
    return [tuple(r) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY customer_id")]


class Ledger:
    """Records each event once: applying one twice breaks the primary key."""

    name = "ledger"
    topics = CustomerDirectory.topics
    tables = ("ledger",)

    def __init__(self, fail_after: int | None = None) -> None:
        self.fail_after = fail_after

    def writing_to(self, suffix: str) -> Ledger:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        for n, event in enumerate(events):
            if self.fail_after is not None and n == self.fail_after:
                raise RuntimeError("crashed mid-page")
            await conn.execute("INSERT INTO ledger VALUES ($1)", event.stream_id)


class TestCatchingUp:
    async def test_a_new_projection_reads_the_log_from_the_start(self, pool: asyncpg.Pool) -> None:
        customers = [await register(pool, f"c{n}@example.org") for n in range(5)]
        runner = ProjectionRunner(pool, [CustomerDirectory()], page_size=2)
        await runner.setup()
        assert await runner.catch_up() == 5
        rows = await pool.fetch("SELECT customer_id, identities FROM customer_directory")
        assert {r["customer_id"]: r["identities"] for r in rows} == {
            c.id: [f"email:c{n}@example.org"] for n, c in enumerate(customers)
        }
        (status,) = await runner.status()
        assert (status.name, status.events_behind, status.seconds_behind) == (
            "customer_directory",
            0,
            0,
        )

    async def test_status_reports_the_events_not_yet_applied(self, pool: asyncpg.Pool) -> None:
        for n in range(3):
            await register(pool, f"c{n}@example.org")
        (status,) = await ProjectionRunner(pool, [CustomerDirectory()]).status()
        assert status.position == LogPosition()
        assert status.events_behind == 3
        assert status.seconds_behind > 0


class TestFollowingLive:
    async def test_an_event_appended_after_start_appears_within_a_second(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(pool, [CustomerDirectory()], poll_interval=0.1)
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            await asyncio.sleep(0.2)
            customer = await register(pool, "late@example.org")
            started = time.monotonic()
            while time.monotonic() - started < 1:
                found = await pool.fetchval(
                    "SELECT identities FROM customer_directory WHERE customer_id = $1", customer.id
                )
                if found:
                    break
                await asyncio.sleep(0.02)
            assert found == ["email:late@example.org"]
        finally:
            stop.set()
            await asyncio.wait_for(running, 5)


class TestCrashSafety:
    async def test_a_page_that_fails_midway_leaves_no_trace_and_is_applied_once_later(
        self, pool: asyncpg.Pool
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        customers = [await register(pool, f"c{n}@example.org") for n in range(4)]
        crashing = ProjectionRunner(pool, [Ledger(fail_after=2)])
        await crashing.setup()
        with pytest.raises(RuntimeError, match="crashed mid-page"):
            await crashing.step("ledger")
        assert await pool.fetchval("SELECT count(*) FROM ledger") == 0
        (status,) = await crashing.status()
        assert status.position == LogPosition()

        runner = ProjectionRunner(pool, [Ledger()])
        assert await runner.catch_up() == 4
        assert await runner.catch_up() == 0
        stored = {r[0] for r in await pool.fetch("SELECT stream_id FROM ledger")}
        assert stored == {c.id for c in customers}


class TestReportingFailures:
    async def test_a_failing_projection_is_reported_until_it_recovers(
        self, pool: asyncpg.Pool
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        await register(pool, "ana@example.org")
        ledger = Ledger(fail_after=0)
        runner = ProjectionRunner(pool, [ledger], poll_interval=0.05)

        async def run_a_while() -> None:
            stop = asyncio.Event()
            running = asyncio.create_task(runner.run(stop))
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.wait_for(running, 5)

        await run_a_while()
        assert runner.failing == {"ledger": "RuntimeError: crashed mid-page"}
        ledger.fail_after = None
        await run_a_while()
        assert runner.failing == {}
        assert await pool.fetchval("SELECT count(*) FROM ledger") == 1


class TestRebuilding:
    async def test_a_rebuilt_directory_equals_the_live_one_after_merges(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresCustomerStore(pool)
        upsert = UpsertCustomer(store, SystemClock(), RandomIds())
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        runner = ProjectionRunner(pool, [CustomerDirectory()], page_size=3)
        await runner.setup()
        ana = await upsert(claims("email:ana@example.org"), {"first_name": "Ana"}, {"plan": "pro"})
        await runner.catch_up()
        phone = await upsert(
            claims("phone:020 7946 0958"), {"time_zone": "Europe/London"}, {"vip": True}
        )
        await upsert(claims("email:ana@example.org"), {"last_name": "Lima"}, {"plan": None})
        await ingest(
            [
                SignalReport(
                    "crm-9",
                    "contact.updated",
                    T0,
                    claims("email:ana@example.org", "phone:+442079460958"),
                )
            ]
        )
        await upsert(claims("email:bo@example.org"), {"locale": "en-GB"}, {})
        await runner.catch_up()
        live = await directory(pool)

        rows = {r["customer_id"]: r for r in await pool.fetch("SELECT * FROM customer_directory")}
        survivor, merged = (
            (ana.customer_id, phone.customer_id)
            if rows[phone.customer_id]["merged_into"]
            else (phone.customer_id, ana.customer_id)
        )
        assert rows[merged]["merged_into"] == survivor
        assert rows[merged]["identities"] == []
        assert rows[survivor]["identities"] == ["email:ana@example.org", "phone:+442079460958"]
        assert (rows[survivor]["first_name"], rows[survivor]["last_name"]) == ("Ana", "Lima")
        assert rows[survivor]["time_zone"] == "Europe/London"
        assert json.loads(rows[survivor]["attributes"]) == {"vip": True}

        position = await runner.rebuild("customer_directory")
        assert await directory(pool) == live
        (status,) = await runner.status()
        assert (status.position, status.events_behind) == (position, 0)
        assert await runner.catch_up() == 0
        indexes = await pool.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'customer_directory'"
        )
        assert all("rebuild" not in r["indexname"] for r in indexes)

    async def test_reads_during_a_rebuild_always_find_a_directory(self, pool: asyncpg.Pool) -> None:
        for n in range(30):
            await register(pool, f"c{n}@example.org")
        runner = ProjectionRunner(pool, [CustomerDirectory()], page_size=5)
        await runner.setup()
        await runner.catch_up()
        counts: list[int] = []

        async def read() -> None:
            while not rebuilt.done():
                counts.append(await pool.fetchval("SELECT count(*) FROM customer_directory"))
                await asyncio.sleep(0)

        rebuilt = asyncio.ensure_future(runner.rebuild("customer_directory"))
        await asyncio.gather(read(), rebuilt)
        assert counts
        assert set(counts) == {30}


class TestCommandLine:
    async def test_status_prints_each_projection_and_its_lag(
        self, pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await register(pool, "ana@example.org")
        monkeypatch.setenv("DATABASE_URL", database_url)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await asyncio.to_thread(main, ["projections", "status"])
        (line,) = [x for x in out.getvalue().splitlines() if x.startswith("customer_directory")]
        assert line.split()[1:3] == ["0/0", "1"]

        with contextlib.redirect_stdout(io.StringIO()):
            await asyncio.to_thread(main, ["projections", "rebuild", "customer_directory"])
        assert len(await directory(pool)) == 1

    async def test_rebuilding_an_unknown_projection_says_which_exist(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        with pytest.raises(SystemExit, match="customer_directory"):
            await asyncio.to_thread(main, ["projections", "rebuild", "nope"])
