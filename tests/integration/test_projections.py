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
from adapters.postgres.event_store import LogPosition, PostgresEventStore
from adapters.postgres.projections import ProjectionRunner, stuck_projections
from adapters.postgres.signal_intake import PostgresSignalIntake
from adapters.postgres.unit_of_work import PostgresUnitsOfWork
from adapters.system.clock import SystemClock
from adapters.system.ids import RandomIds
from application.customer.signals import AttributeSignals, IngestSignals
from application.customer.upsert_customer import UpsertCustomer
from domain.customer.aggregate import Customer
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer
from domain.signals.aggregate import SignalReport
from domain.signals.document import ReceivedSignal, SignalReader
from domain.signals.intake import RECEIVED_TOPIC
from entrypoints.cli import main
from entrypoints.metrics import exposition
from entrypoints.workers.projector import Projector
from tests.integration.readable_log import log_readable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

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


async def register_poison(pool: asyncpg.Pool) -> Customer:
    """A customer whose identity holds a NUL, appended past every check: PostgreSQL's text
    cannot hold it, so the directory cannot apply the event."""
    nul = IdentityClaim(Identity("email", "a\u0000b@example.org"))
    customer = Customer.register(uuid4(), T0, (nul,))
    await PostgresEventStore().append(pool, [customer])  # type: ignore[arg-type]
    return customer


class Ledger:
    """Records each event once: applying one twice breaks the primary key."""

    name = "ledger"
    topics = CustomerDirectory.topics
    tables = ("ledger",)

    def __init__(
        self,
        fail_after: int | None = None,
        refused: set[UUID] | None = None,
        outage: Exception | None = None,
        outages: int = 0,
    ) -> None:
        self.fail_after = fail_after
        self.refused = refused or set()  # streams it fails on, after writing the others
        self.outage = outage
        self.outages = outages  # pages failed with `outage` before it applies any

    def writing_to(self, suffix: str) -> Ledger:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        if self.outage is not None and self.outages > 0:
            self.outages -= 1
            raise self.outage
        for n, event in enumerate(events):
            if self.fail_after is not None and n == self.fail_after:
                raise RuntimeError("crashed mid-page")
            await conn.execute("INSERT INTO ledger VALUES ($1)", event.stream_id)
        for event in events:
            if event.stream_id in self.refused:
                raise ValueError(f"cannot take {event.stream_id}")


class TestCatchingUp:
    async def test_a_new_projection_reads_the_log_from_the_start(self, pool: asyncpg.Pool) -> None:
        customers = [await register(pool, f"c{n}@example.org") for n in range(5)]
        runner = ProjectionRunner(pool, [CustomerDirectory()], page_size=2)
        await runner.setup()
        await log_readable(pool)
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
            await log_readable(pool)  # the second counts from when the runner can read it
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
        await log_readable(pool)
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
        await log_readable(pool)
        ledger = Ledger(fail_after=0)
        runner = ProjectionRunner(pool, [ledger], poll_interval=0.05, attempts=1000)

        async def run_a_while() -> None:
            stop = asyncio.Event()
            running = asyncio.create_task(runner.run(stop))
            await asyncio.sleep(0.3)
            stop.set()
            await asyncio.wait_for(running, 5)

        await run_a_while()
        assert runner.failing == {"ledger": "RuntimeError: crashed mid-page"}
        (status,) = await runner.status()
        assert status.failing == "RuntimeError: crashed mid-page"
        ledger.fail_after = None
        await run_a_while()
        assert runner.failing == {}
        assert await pool.fetchval("SELECT count(*) FROM ledger") == 1
        (status,) = await runner.status()
        assert status.failing is None


class LenientReader(SignalReader):
    """Reads a received signal with none of the checks, as a signal stored before them would
    be read."""

    def parse(self, payload: bytes) -> SignalReport | str:
        body = json.loads(payload)
        return SignalReport(
            body["id"],
            body["type"],
            datetime.fromisoformat(body["occurred_at"]),
            tuple(IdentityClaim(Identity(i["type"], i["value"])) for i in body["identities"]),
        )


def signal(event_id: str, email: str) -> ReceivedSignal:
    body = {
        "id": event_id,
        "type": "page.viewed",
        "occurred_at": "2026-11-27T09:00:00+00:00",
        "identities": [{"type": "email", "value": email}],
    }
    return ReceivedSignal(event_id, json.dumps(body).encode())


class TestParkingPoisonEvents:
    async def test_an_event_that_fails_every_round_is_parked_and_the_next_ones_are_applied(
        self, pool: asyncpg.Pool
    ) -> None:
        before = await register(pool, "before@example.org")
        poison = await register_poison(pool)
        after = await register(pool, "after@example.org")
        await log_readable(pool)
        runner = ProjectionRunner(pool, [CustomerDirectory()], attempts=3)
        await runner.setup()
        for _ in range(3):
            with pytest.raises(asyncpg.CharacterNotInRepertoireError):
                await runner.catch_up()
            assert await directory(pool) == []
            (status,) = await runner.status()
            assert status.failing is not None
            assert status.failing.startswith("CharacterNotInRepertoireError")
            assert (status.parked, status.events_behind) == (0, 3)

        assert await runner.catch_up() == 2
        rows = await pool.fetch("SELECT customer_id FROM customer_directory")
        assert {r[0] for r in rows} == {before.id, after.id}
        (parked,) = await runner.parked()
        assert (parked.projection, parked.stream_id, parked.version) == (
            "customer_directory",
            poison.id,
            1,
        )
        assert parked.topic.endswith("Customer.Registered")
        assert parked.error.startswith("CharacterNotInRepertoireError")
        assert parked.settled is None
        (status,) = await runner.status()
        assert (status.failing, status.parked, status.events_behind) == (None, 1, 0)
        assert parked.position <= status.position

    async def test_only_the_poison_of_a_page_is_parked_and_the_rest_is_applied_once(
        self, pool: asyncpg.Pool
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        customers = [await register(pool, f"c{n}@example.org") for n in range(7)]
        await log_readable(pool)
        poison = customers[4].id
        runner = ProjectionRunner(pool, [Ledger(refused={poison})], attempts=1)
        await runner.setup()
        with pytest.raises(ValueError, match="cannot take"):
            await runner.catch_up()
        assert await runner.catch_up() == 6
        stored = {r[0] for r in await pool.fetch("SELECT stream_id FROM ledger")}
        assert stored == {c.id for c in customers} - {poison}
        assert [p.stream_id for p in await runner.parked()] == [poison]
        assert (await runner.parked())[0].error == f"ValueError: cannot take {poison}"

    @pytest.mark.parametrize(
        "outage",
        [
            ConnectionRefusedError(111, "Connection refused"),
            TimeoutError(),
            asyncpg.InterfaceError("connection is closed"),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients already"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
        ],
        ids=type,
    )
    async def test_an_outage_parks_nothing_however_many_rounds_it_lasts(
        self, pool: asyncpg.Pool, outage: Exception
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        customers = [await register(pool, f"c{n}@example.org") for n in range(3)]
        await log_readable(pool)
        attempts = 3
        runner = ProjectionRunner(
            pool, [Ledger(outage=outage, outages=attempts + 5)], attempts=attempts
        )
        await runner.setup()
        for _ in range(attempts + 5):
            with pytest.raises(type(outage)):
                await runner.step("ledger")
        assert await runner.parked() == []
        (status,) = await runner.status()
        assert status.position == LogPosition()

        assert await runner.catch_up() == 3
        stored = {r[0] for r in await pool.fetch("SELECT stream_id FROM ledger")}
        assert stored == {c.id for c in customers}
        assert await runner.parked() == []

    async def test_a_conflict_that_clears_by_the_round_after_the_attempts_is_not_parked(
        self, pool: asyncpg.Pool
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        await register(pool, "ana@example.org")
        await log_readable(pool)
        deadlock = asyncpg.exceptions.DeadlockDetectedError("deadlock detected")
        runner = ProjectionRunner(pool, [Ledger(outage=deadlock, outages=3)], attempts=3)
        await runner.setup()
        for _ in range(3):
            with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
                await runner.step("ledger")
        assert await runner.catch_up() == 1
        assert await runner.parked() == []

    async def test_a_signal_attribution_cannot_store_is_parked_and_a_clean_one_after_it_is_attributed(
        self, pool: asyncpg.Pool
    ) -> None:
        intake = PostgresSignalIntake(pool)
        await intake.receive([signal("clean-1", "ana@example.org")], T0)
        await intake.receive([signal("nul", "a\u0000b@example.org")], T0)
        await intake.receive([signal("clean-2", "bo@example.org")], T0)
        await log_readable(pool)
        store = PostgresUnitsOfWork(pool)
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        attribution = AttributeSignals(
            ingest, LenientReader(IdentityNormalizer()), intake, SystemClock()
        )
        runner = ProjectionRunner(pool, [attribution], attempts=3)
        await runner.setup()
        for _ in range(3):
            with pytest.raises(asyncpg.CharacterNotInRepertoireError):
                await runner.catch_up()

        await runner.catch_up()
        attributed = await intake.attributed(["clean-1", "nul", "clean-2"])
        assert set(attributed) == {"clean-1", "clean-2"}
        assert all(a.customer_id is not None for a in attributed.values())
        (parked,) = await runner.parked()
        assert (parked.projection, parked.topic) == ("signal_attribution", RECEIVED_TOPIC)
        assert parked.error.startswith("CharacterNotInRepertoireError")

    async def test_a_projection_failing_or_parked_lately_is_stuck_until_it_moves(
        self, pool: asyncpg.Pool
    ) -> None:
        await register_poison(pool)
        await log_readable(pool)
        runner = ProjectionRunner(pool, [CustomerDirectory()], attempts=1)
        await runner.setup()
        assert await stuck_projections(pool, 900) == []
        with pytest.raises(asyncpg.CharacterNotInRepertoireError):
            await runner.catch_up()
        (stuck,) = await stuck_projections(pool, 900)
        assert (stuck.name, stuck.parked_lately) == ("customer_directory", 0)
        assert "failing since" in str(stuck)
        assert "CharacterNotInRepertoireError" in str(stuck)

        await runner.catch_up()
        (stuck,) = await stuck_projections(pool, 900)
        assert (stuck.failing, stuck.parked_lately) == (None, 1)
        assert "1 event(s) parked" in str(stuck)
        assert await stuck_projections(pool, 0) == []

    async def test_the_projector_shows_parked_events_on_metrics(self, pool: asyncpg.Pool) -> None:
        await register_poison(pool)
        runner = ProjectionRunner(pool, [CustomerDirectory()], attempts=1)
        projector = Projector(runner)
        await projector.start()
        line = 'chorus_projection_parked_events{projection="customer_directory"} 1.0'
        try:
            deadline = time.monotonic() + 5
            while line not in exposition().decode() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await projector.stop()
        assert line in exposition().decode()


class TestRetryingAndSkippingParkedEvents:
    async def test_a_retry_after_a_fix_applies_the_event_and_settles_it(
        self, pool: asyncpg.Pool
    ) -> None:
        await pool.execute("CREATE TABLE ledger (stream_id uuid PRIMARY KEY)")
        customers = [await register(pool, f"c{n}@example.org") for n in range(3)]
        await log_readable(pool)
        ledger = Ledger(refused={customers[0].id, customers[1].id})
        runner = ProjectionRunner(pool, [ledger], attempts=1)
        await runner.setup()
        with pytest.raises(ValueError, match="cannot take"):
            await runner.catch_up()
        await runner.catch_up()
        assert len(await runner.parked("ledger")) == 2

        ledger.refused = {customers[1].id}  # the fix takes one of them
        applied, still = await runner.retry("ledger", by="ops")
        assert [p.stream_id for p in applied] == [customers[0].id]
        assert (applied[0].settled, applied[0].settled_by) == ("applied", "ops")
        assert applied[0].settled_at is not None
        assert [p.stream_id for p in still] == [customers[1].id]
        assert still[0].error == f"ValueError: cannot take {customers[1].id}"
        assert [p.stream_id for p in await runner.parked()] == [customers[1].id]
        stored = {r[0] for r in await pool.fetch("SELECT stream_id FROM ledger")}
        assert stored == {customers[0].id, customers[2].id}
        assert await runner.catch_up() == 0

    async def test_status_lists_parked_events_and_skip_records_who_why_and_when(
        self, pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await register(pool, "ana@example.org")
        await register_poison(pool)
        await log_readable(pool)
        parking = ProjectionRunner(pool, [CustomerDirectory()], attempts=1)
        await parking.setup()
        with pytest.raises(asyncpg.CharacterNotInRepertoireError):
            await parking.catch_up()
        await parking.catch_up()
        (parked,) = await parking.parked()
        event = str(parked.position.position)
        monkeypatch.setenv("DATABASE_URL", database_url)

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await asyncio.to_thread(main, ["projections", "status"])
        table, listing = out.getvalue().split("\n\n")
        (line,) = [x for x in table.splitlines() if x.startswith("customer_directory")]
        assert line.split()[3:6] == ["0.0", "1", "parked:"]
        (listed,) = [x for x in listing.splitlines() if x.startswith("customer_directory")]
        assert listed.split()[1] == event
        assert "CharacterNotInRepertoireError" in listed

        with pytest.raises(SystemExit) as still:
            await asyncio.to_thread(main, ["projections", "retry", "customer_directory"])
        assert still.value.code == 1
        assert len(await parking.parked()) == 1

        with contextlib.redirect_stdout(io.StringIO()):
            await asyncio.to_thread(
                main,
                [
                    "projections",
                    "skip",
                    "customer_directory",
                    event,
                    "--reason",
                    "NUL",
                    "--by",
                    "ana",
                ],
            )
        assert await parking.parked() == []
        row = await pool.fetchrow(
            "SELECT settled, settled_by, reason, settled_at FROM parked_events"
        )
        assert tuple(row)[:3] == ("skipped", "ana", "NUL")
        assert row["settled_at"] is not None
        (status,) = await parking.status()
        assert status.parked == 0

        with pytest.raises(SystemExit, match="skipped already"):
            await asyncio.to_thread(
                main, ["projections", "skip", "customer_directory", event, "--reason", "again"]
            )

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (["retry", "nope"], "no projection 'nope'; known: signal_attribution"),
            (["skip", "nope", "1", "--reason", "x"], "no projection 'nope'"),
            (["skip", "customer_directory", "12345", "--reason", "x"], "no parked event"),
            (["skip", "customer_directory", "1", "--reason", " "], "--reason"),
        ],
    )
    async def test_an_unknown_projection_or_event_is_a_clear_error(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        with pytest.raises(SystemExit, match=says) as error:
            await asyncio.to_thread(main, ["projections", *args])
        assert error.value.code != 0


class TestRebuilding:
    async def test_a_rebuilt_directory_equals_the_live_one_after_merges(
        self, pool: asyncpg.Pool
    ) -> None:
        store = PostgresUnitsOfWork(pool)
        upsert = UpsertCustomer(store, SystemClock(), RandomIds())
        ingest = IngestSignals(store, SystemClock(), RandomIds())
        runner = ProjectionRunner(pool, [CustomerDirectory()], page_size=3)
        await runner.setup()
        ana = await upsert(claims("email:ana@example.org"), {"first_name": "Ana"}, {"plan": "pro"})
        await log_readable(pool)
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
        await log_readable(pool)
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

    async def test_a_rebuild_leaves_out_the_events_the_live_directory_parked(
        self, pool: asyncpg.Pool
    ) -> None:
        await register(pool, "ana@example.org")
        await register_poison(pool)
        await register(pool, "bo@example.org")
        await log_readable(pool)
        runner = ProjectionRunner(pool, [CustomerDirectory()], attempts=1)
        await runner.setup()
        with pytest.raises(asyncpg.CharacterNotInRepertoireError):
            await runner.catch_up()
        await runner.catch_up()
        live = await directory(pool)
        assert len(live) == 2

        await runner.rebuild("customer_directory")
        assert await directory(pool) == live

    async def test_reads_during_a_rebuild_always_find_a_directory(self, pool: asyncpg.Pool) -> None:
        for n in range(30):
            await register(pool, f"c{n}@example.org")
        await log_readable(pool)
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
        await log_readable(pool)
        monkeypatch.setenv("DATABASE_URL", database_url)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await asyncio.to_thread(main, ["projections", "status"])
        (line,) = [x for x in out.getvalue().splitlines() if x.startswith("customer_directory")]
        assert line.split()[1:3] == ["0/0", "1"]
        names = [x.split()[0] for x in out.getvalue().splitlines() if x.strip()]
        in_lanes = ["signal_attribution", "customer_directory", "triggers", "outbound_events"]
        assert sorted(in_lanes, key=names.index) == in_lanes  # the pipeline's order

        with contextlib.redirect_stdout(io.StringIO()):
            await asyncio.to_thread(main, ["projections", "rebuild", "customer_directory"])
        assert len(await directory(pool)) == 1

    async def test_rebuilding_an_unknown_projection_says_which_exist(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", database_url)
        with pytest.raises(SystemExit, match="customer_directory"):
            await asyncio.to_thread(main, ["projections", "rebuild", "nope"])
