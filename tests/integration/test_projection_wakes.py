"""Lanes read when a commit wrote one of their topics, and a round that finds nothing of a
projection's commits nothing durable; a projection that follows another goes as far as the other
has really got."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import asyncpg
import pytest

from adapters.postgres.event_store import LogPosition, PostgresEventStore
from adapters.postgres.projections import LOCK_POSITION, PositionsAhead, ProjectionRunner
from adapters.postgres.signal_intake import PostgresSignalIntake
from domain.catalog import topic_of
from domain.customer.aggregate import Customer
from domain.signals.document import ReceivedSignal
from domain.signals.intake import RECEIVED_TOPIC

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ports.projections import LoggedEvent

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
REGISTERED = topic_of(Customer.Registered)


class Tally:
    """Notes the streams of the events of its topics, in `tally`; reads `follows` first."""

    tables = ("tally",)

    def __init__(self, name: str, topics: frozenset[str], follows: tuple[str, ...] = ()) -> None:
        self.name = name
        self.topics = topics
        self.follows = follows

    def writing_to(self, suffix: str) -> Tally:
        return self

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        await conn.executemany(
            "INSERT INTO tally VALUES ($1, $2)", [(self.name, e.stream_id) for e in events]
        )


async def tallied(pool: asyncpg.Pool, name: str) -> int:
    found: int = await pool.fetchval("SELECT count(*) FROM tally WHERE name = $1", name)
    return found


async def recorded(pool: asyncpg.Pool, name: str) -> LogPosition:
    row = await pool.fetchrow(
        "SELECT transaction_id::text::bigint, position FROM projection_positions WHERE name = $1",
        name,
    )
    assert row is not None
    return LogPosition(row[0], row[1])


async def readable(pool: asyncpg.Pool) -> None:
    """Waits until no transaction older than the last append is running, anywhere on the
    server: the runner reads no further (and the server may be shared)."""
    while await pool.fetchval(
        "SELECT max(transaction_id) >= pg_snapshot_xmin(pg_current_snapshot()) FROM events"
    ):
        await asyncio.sleep(0.01)


async def register(pool: asyncpg.Pool) -> Customer:
    customer = Customer.register(uuid4(), T0, ())
    await PostgresEventStore().append(pool, [customer])  # type: ignore[arg-type]
    await readable(pool)
    return customer


async def receive(pool: asyncpg.Pool, event_id: str) -> None:
    body = {"id": event_id, "type": "page.viewed", "occurred_at": T0.isoformat(), "identities": []}
    await PostgresSignalIntake(pool).receive(
        [ReceivedSignal(event_id, json.dumps(body).encode())], T0
    )
    await readable(pool)


@pytest.fixture
async def tally(pool: asyncpg.Pool) -> None:
    await pool.execute("CREATE TABLE tally (name text, stream_id uuid)")


async def until_true(check: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.usefixtures("tally")
class TestWaking:
    async def test_a_commit_of_other_topics_leaves_a_lane_asleep_and_one_of_its_own_wakes_it(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(pool, [Tally("customers", frozenset({REGISTERED}))])
        runner.poll_interval = 60  # only a wake makes it read
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            await asyncio.sleep(0.3)  # its first round, from the start
            await register(pool)
            runner.wake(frozenset({RECEIVED_TOPIC}))
            assert not await until_true(lambda: tallied(pool, "customers"), 0.5)
            runner.wake(frozenset({RECEIVED_TOPIC, REGISTERED}))
            assert await until_true(lambda: tallied(pool, "customers"), 2)
        finally:
            stop.set()
            await asyncio.wait_for(running, 5)

    async def test_a_wake_that_names_no_topics_wakes_every_lane(self, pool: asyncpg.Pool) -> None:
        runner = ProjectionRunner(pool, [Tally("customers", frozenset({REGISTERED}))])
        runner.poll_interval = 60
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            await asyncio.sleep(0.3)
            await register(pool)
            runner.wake()
            assert await until_true(lambda: tallied(pool, "customers"), 2)
        finally:
            stop.set()
            await asyncio.wait_for(running, 5)


@pytest.mark.usefixtures("tally")
class TestPolling:
    async def test_a_poll_that_finds_the_log_where_it_was_reads_no_projection(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], poll_interval=0.02
        )
        steps: list[str] = []
        step = runner.step

        async def counted(name: str) -> int | None:
            steps.append(name)
            return await step(name)

        runner.step = counted  # type: ignore[method-assign]
        await register(pool)
        stop = asyncio.Event()
        running = asyncio.create_task(runner.run(stop))
        try:
            assert await until_true(lambda: tallied(pool, "customers"), 2)
            await asyncio.sleep(0.2)  # a poll or two after the one that found the event
            before = len(steps)
            await asyncio.sleep(0.3)  # about 15 polls
            assert len(steps) == before
            await register(pool)  # no wake: the next poll finds it
            assert await until_true(lambda: pool.fetchval("SELECT count(*) = 2 FROM tally"), 2)
        finally:
            stop.set()
            await asyncio.wait_for(running, 5)


@pytest.mark.usefixtures("tally")
class TestRoundsWithNothingToApply:
    async def test_a_round_past_other_topics_records_nothing_and_the_next_starts_past_them(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=60
        )
        await runner.setup()
        await register(pool)
        assert await runner.catch_up() == 1
        start = await recorded(pool, "customers")
        for n in range(3):
            await receive(pool, f"s{n}")
        assert await runner.catch_up() == 0
        assert await recorded(pool, "customers") == start
        ahead = runner.ahead.of("customers", start)
        assert ahead > start
        customer = await register(pool)
        assert await runner.catch_up() == 1
        assert await pool.fetchval("SELECT count(*) FROM tally WHERE stream_id = $1", customer.id)
        assert await recorded(pool, "customers") > ahead

    async def test_a_page_that_changed_nothing_records_nothing_and_is_not_read_again(
        self, pool: asyncpg.Pool
    ) -> None:
        silent = Silent("silent", frozenset({RECEIVED_TOPIC}))
        runner = ProjectionRunner(pool, [silent], record_every=60)
        await runner.setup()
        await receive(pool, "s0")
        assert await runner.catch_up() == 1  # its first page is recorded
        start = await recorded(pool, "silent")
        await receive(pool, "s1")
        assert await runner.catch_up() == 1
        assert await recorded(pool, "silent") == start
        assert await runner.catch_up() == 0
        assert silent.read == 2

    async def test_a_page_that_wrote_is_recorded_at_once_and_tells_what_it_recorded(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Registrar("registrar", frozenset({RECEIVED_TOPIC}))], record_every=60
        )
        told: list[frozenset[str] | None] = []
        runner.on_applied = told.append
        await runner.setup()
        await receive(pool, "s0")
        assert await runner.catch_up() == 1
        start = await recorded(pool, "registrar")
        await receive(pool, "s1")
        assert await runner.catch_up() == 1  # within the interval: recorded, as it wrote
        assert await recorded(pool, "registrar") > start
        assert not runner.ahead.holds("registrar")
        assert told == [frozenset({REGISTERED})] * 2
        assert await runner.catch_up() == 0

    async def test_a_position_moved_past_other_topics_is_recorded_once_the_interval_passed(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=0.2
        )
        await runner.setup()
        await register(pool)
        await runner.catch_up()
        await receive(pool, "s1")
        await runner.catch_up()
        (status,) = await runner.status()
        assert status.events_behind == 1
        await asyncio.sleep(0.25)
        await runner.catch_up()
        (status,) = await runner.status()
        assert status.events_behind == 0

    async def test_a_replay_from_the_start_is_not_skipped_past_what_was_read_before(
        self, pool: asyncpg.Pool
    ) -> None:
        # A position set back from outside is seen once what the runners saw of it is no
        # longer trusted (`PositionsAhead.trust`, a second in the worker).
        runner = ProjectionRunner(
            pool,
            [Tally("customers", frozenset({REGISTERED}))],
            record_every=60,
            ahead=PositionsAhead(trust=0.2),
        )
        await runner.setup()
        await register(pool)
        assert await runner.catch_up() == 1
        await receive(pool, "s1")
        await runner.catch_up()
        await pool.execute("DELETE FROM tally")
        await pool.execute(
            "UPDATE projection_positions SET transaction_id = '0', position = 0"
            " WHERE name = 'customers'"
        )
        await asyncio.sleep(0.25)
        assert await runner.catch_up() == 1


async def holding_the_lock(pool: asyncpg.Pool, name: str) -> asyncpg.Connection:
    """A connection that holds the projection's turn (as another runner's step would)."""
    conn: asyncpg.Connection = await pool.acquire()
    await conn.execute("BEGIN")
    await conn.execute("SELECT pg_advisory_xact_lock(730119, hashtext($1))", name)
    return conn


@pytest.mark.usefixtures("tally")
class TestReadingAhead:
    async def test_a_round_with_nothing_of_its_topics_takes_no_turn(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=60
        )
        await runner.setup()
        await register(pool)
        assert await runner.catch_up() == 1
        other = await holding_the_lock(pool, "customers")
        try:
            await receive(pool, "s1")  # other topics only
            assert await asyncio.wait_for(runner.catch_up(), 2) == 0
            assert await asyncio.wait_for(runner.step("customers"), 2) is None
        finally:
            await other.execute("ROLLBACK")
            await pool.release(other)

    async def test_a_page_with_events_waits_its_turn_and_is_applied_once(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=60
        )
        await runner.setup()
        await register(pool)
        assert await runner.catch_up() == 1
        other = await holding_the_lock(pool, "customers")
        customer = await register(pool)
        stepping = asyncio.ensure_future(runner.step("customers"))
        try:
            await asyncio.sleep(0.3)
            assert not stepping.done()
        finally:
            await other.execute("ROLLBACK")
            await pool.release(other)
        assert await asyncio.wait_for(stepping, 5) == 1
        assert await runner.catch_up() == 0
        assert await pool.fetchval("SELECT count(*) FROM tally WHERE stream_id = $1", customer.id)
        assert await tallied(pool, "customers") == 2

    async def test_a_page_read_ahead_takes_its_turn_as_its_transaction_begins(
        self, pool: asyncpg.Pool, database_url: str
    ) -> None:
        sent: list[str] = []

        async def noting(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(lambda record: sent.append(record.query))

        watched = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=noting)
        try:
            runner = ProjectionRunner(
                watched, [Tally("customers", frozenset({REGISTERED}))], record_every=60
            )
            await runner.setup()
            await register(pool)
            assert await runner.catch_up() == 1  # its first page reads the position
            assert any(LOCK_POSITION in query for query in sent)
            sent.clear()
            await register(pool)
            assert await runner.catch_up() == 1
            assert not any(LOCK_POSITION in query for query in sent)
            assert [q for q in sent if q.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == [
                "BEGIN; SELECT pg_advisory_xact_lock(730119, hashtext('customers'))",
                "COMMIT",
            ]
            assert await tallied(pool, "customers") == 2
        finally:
            await watched.close()

    async def test_a_page_read_ahead_of_a_position_another_runner_moved_is_read_again(
        self, pool: asyncpg.Pool
    ) -> None:
        topics = frozenset({REGISTERED})
        mine = ProjectionRunner(pool, [Tally("customers", topics)], record_every=60)
        theirs = ProjectionRunner(pool, [Tally("customers", topics)], record_every=60)
        await mine.setup()
        await register(pool)
        assert await mine.catch_up() == 1
        await register(pool)
        assert await theirs.catch_up() == 1  # another process's runner took it
        await register(pool)
        assert await mine.catch_up() == 1  # the third only: the second is not applied again
        assert await tallied(pool, "customers") == 3


@pytest.mark.usefixtures("tally")
class TestFollowing:
    async def test_a_follower_goes_as_far_as_the_projection_it_follows_has_read(
        self, pool: asyncpg.Pool
    ) -> None:
        ahead = PositionsAhead()
        followed = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=60, ahead=ahead
        )
        follower = ProjectionRunner(
            pool,
            [Tally("signals", frozenset({RECEIVED_TOPIC}), follows=("customers",))],
            record_every=60,
            ahead=ahead,
        )
        await followed.setup()
        await follower.setup()
        await receive(pool, "s0")
        await followed.catch_up()  # its first round records where it got
        assert await follower.catch_up() == 1
        await receive(pool, "s1")
        assert await follower.catch_up() == 0  # the customers have not got there
        start = await recorded(pool, "customers")
        await followed.catch_up()
        assert await recorded(pool, "customers") == start
        assert await follower.catch_up() == 1

    async def test_a_follower_waits_for_an_event_the_projection_it_follows_has_not_applied(
        self, pool: asyncpg.Pool
    ) -> None:
        ahead = PositionsAhead()
        followed = ProjectionRunner(
            pool, [Tally("customers", frozenset({REGISTERED}))], record_every=60, ahead=ahead
        )
        follower = ProjectionRunner(
            pool,
            [Tally("signals", frozenset({RECEIVED_TOPIC}), follows=("customers",))],
            record_every=60,
            ahead=ahead,
        )
        await followed.setup()
        await follower.setup()
        await register(pool)
        await followed.catch_up()
        await receive(pool, "s1")
        await followed.catch_up()  # past s1, recording nothing
        await register(pool)
        await receive(pool, "s2")
        assert await follower.catch_up() == 1  # s1, not s2 behind the customer
        assert await followed.catch_up() == 1
        assert await follower.catch_up() == 1


class Silent(Tally):
    """Reads its events and writes nothing, as a process with nothing to decide."""

    read = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        self.read += len(events)


class Registrar(Tally):
    """Registers a customer for each event it reads, in the runner's transaction."""

    async def apply(self, conn: asyncpg.Connection, events: Sequence[LoggedEvent]) -> None:
        customers = [Customer.register(uuid4(), T0, ()) for _ in events]
        await PostgresEventStore().append(conn, customers)  # type: ignore[arg-type]


@pytest.mark.usefixtures("tally")
class TestTellingWhatAPageRecorded:
    async def test_a_page_tells_the_topics_its_transaction_recorded(
        self, pool: asyncpg.Pool
    ) -> None:
        runner = ProjectionRunner(pool, [Registrar("registrar", frozenset({RECEIVED_TOPIC}))])
        told: list[frozenset[str] | None] = []
        runner.on_applied = told.append
        await runner.setup()
        await receive(pool, "s1")
        assert await runner.catch_up() == 1
        assert told == [frozenset({REGISTERED})]

    async def test_a_page_that_recorded_nothing_wakes_no_one(self, pool: asyncpg.Pool) -> None:
        runner = ProjectionRunner(pool, [Tally("signals", frozenset({RECEIVED_TOPIC}))])
        told: list[frozenset[str] | None] = []
        runner.on_applied = told.append
        await runner.setup()
        await receive(pool, "s1")
        assert await runner.catch_up() == 1
        assert told == []
