"""Runs projections over the global log: catch up from their position, then follow it live.

An event that a projection cannot apply, for any reason but an outage, holds it up for a few
rounds and is then parked (ADR 0007): set aside in `parked_events`, so the projection goes on
with the next, until `retry` applies it or `skip` drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import asyncpg
import structlog

from adapters.postgres.event_store import (
    LogPage,
    LogPosition,
    PostgresEventStore,
    RecordedEvent,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from ports.projections import Projection

__all__ = [
    "LOCK_POSITION",
    "READABLE_END",
    "NotParked",
    "NotRebuildable",
    "ParkedEvent",
    "PositionsAhead",
    "ProjectionRunner",
    "ProjectionStatus",
    "StuckProjection",
    "UnknownProjection",
    "is_outage",
    "stuck_projections",
]
REBUILD_SUFFIX = "__rebuild"

_ENSURE = """
INSERT INTO projection_positions (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
"""
# Runners of one projection take turns, and a rebuild's swap waits for them, on an advisory
# lock rather than a row lock: FOR UPDATE would give the step a transaction id from its start,
# and every reader of the log waits for the oldest open transaction id (read_topics' horizon),
# so a step that publishes or evaluates for a while would hold all the others back. This way
# a step gets its id at its first write, shortly before it commits.
LOCK_POSITION = """
SELECT pg_advisory_xact_lock(730119, hashtext($1))::text AS locked,
       (SELECT transaction_id::text::bigint FROM projection_positions WHERE name = $1)
           AS transaction_id,
       (SELECT position FROM projection_positions WHERE name = $1) AS position
"""
_ADVANCE = """
UPDATE projection_positions SET transaction_id = $2::text::xid8, position = $3, updated_at = now(),
                                failing = NULL, failing_since = NULL
WHERE name = $1
"""
# A step's transaction begun and the projection's turn taken in one round trip (the simple query
# protocol runs both statements), for a page read ahead: the step's last statement checks that
# the position is still recorded where the page was read from, instead of a read under the lock.
_BEGIN_TURN = "BEGIN; SELECT pg_advisory_xact_lock(730119, hashtext({name}))"
# The position moved on from where the step found it recorded: no row if it is no longer there.
_ADVANCE_FROM = """
UPDATE projection_positions SET transaction_id = $2::text::xid8, position = $3, updated_at = now(),
                                failing = NULL, failing_since = NULL
WHERE name = $1 AND transaction_id = $4::text::xid8 AND position = $5
RETURNING 1
"""
_FAILING = """
UPDATE projection_positions SET failing = $2, failing_since = coalesce(failing_since, now())
WHERE name = $1
"""
_RECOVERED = "UPDATE projection_positions SET failing = NULL, failing_since = NULL WHERE name = $1"
_STATUS = """
SELECT p.name, p.transaction_id::text::bigint AS transaction_id, p.position, p.updated_at,
       behind.events,
       greatest(coalesce(extract(epoch FROM now() - behind.oldest), 0), 0)::float8 AS seconds,
       p.failing,
       (SELECT count(*) FROM parked_events k WHERE k.projection = p.name AND k.settled IS NULL)
           AS parked
FROM projection_positions p
CROSS JOIN LATERAL (
    SELECT count(*) AS events, min(e.occurred_at) AS oldest FROM events e
    WHERE (e.transaction_id, e.position) > (p.transaction_id, p.position)
) behind
WHERE p.name = ANY($1::text[])
ORDER BY p.name
"""
# The event's log position comes from its row: the runner's events carry their stream version.
_PARK = """
INSERT INTO parked_events (projection, transaction_id, position, stream_id, version, topic, error)
SELECT $1, transaction_id, position, stream_id, version, topic, $4 FROM events
WHERE stream_id = $2 AND version = $3
ON CONFLICT (projection, position) DO NOTHING
"""
_PARKED_COLUMNS = """
projection, transaction_id::text::bigint AS transaction_id, position, stream_id, version, topic,
error, parked_at, settled, settled_at, settled_by, reason
"""
_PARKED = f"""
SELECT {_PARKED_COLUMNS} FROM parked_events
WHERE projection = ANY($1::text[]) AND settled IS NULL
ORDER BY parked_events.transaction_id, parked_events.position
"""
_PARKED_COUNTS = """
SELECT projection, count(*) FROM parked_events
WHERE projection = ANY($1::text[]) AND settled IS NULL GROUP BY projection
"""
_CLAIM_PARKED = f"""
SELECT {_PARKED_COLUMNS} FROM parked_events
WHERE projection = $1 AND position = $2 AND settled IS NULL FOR UPDATE
"""
_PARKED_EVENT = """
SELECT position, stream_id, version, topic, occurred_at, payload, class_version FROM events
WHERE stream_id = $1 AND version = $2
"""
_STILL_PARKED = "UPDATE parked_events SET error = $3 WHERE projection = $1 AND position = $2"
_SETTLE = f"""
UPDATE parked_events SET settled = $3, settled_at = now(), settled_by = $4, reason = $5
WHERE projection = $1 AND position = $2 AND settled IS NULL
RETURNING {_PARKED_COLUMNS}
"""
# A rebuild leaves out what the live projection does not hold: the events parked or skipped.
_SET_ASIDE = """
SELECT position FROM parked_events WHERE projection = $1 AND settled IS DISTINCT FROM 'applied'
"""
_SETTLED = f"SELECT {_PARKED_COLUMNS} FROM parked_events WHERE projection = $1 AND position = $2"
_STUCK = """
SELECT p.name, p.failing, p.failing_since, young.events, young.latest
FROM projection_positions p
CROSS JOIN LATERAL (
    SELECT count(*) AS events, max(k.parked_at) AS latest FROM parked_events k
    WHERE k.projection = p.name AND k.settled IS NULL
      AND k.parked_at > now() - make_interval(secs => $1)
) young
WHERE p.failing IS NOT NULL OR young.events > 0
ORDER BY p.name
"""
# The topics of the events the step's own transaction appended (its processes' records; none
# before its first write), whether the position moved, and whether it was still recorded where
# the step found it (`$5`, `$6`): one round trip after a page is applied. The position moves on
# from there unless `$4` (a page that wrote nothing may pass without a record) and the
# transaction wrote nothing. Its id is read once: where `$4` holds, before the position's row is
# written (which would give it one); where it does not, whenever, as what it appended has that
# id either way. The recorded position is read as the statement found it, before its update.
_WRITTEN_HERE = """
WITH here AS MATERIALIZED (SELECT pg_current_xact_id_if_assigned() AS id),
advanced AS (
    UPDATE projection_positions
    SET transaction_id = $2::text::xid8, position = $3, updated_at = now(),
        failing = NULL, failing_since = NULL
    WHERE name = $1 AND transaction_id = $5::text::xid8 AND position = $6
      AND (NOT $4::boolean OR (SELECT id FROM here) IS NOT NULL)
    RETURNING 1
)
SELECT ARRAY(SELECT DISTINCT topic FROM events WHERE transaction_id = (SELECT id FROM here)),
       EXISTS (SELECT FROM advanced),
       EXISTS (SELECT FROM projection_positions
               WHERE name = $1 AND transaction_id = $5::text::xid8 AND position = $6)
"""
_FOLLOWED = """
SELECT name, transaction_id::text::bigint AS transaction_id, position FROM projection_positions
WHERE name = ANY($1::text[])
"""
# The readable end of the log, as `read_topics` sees it: the last event below the horizon.
# The order names the table's columns: a bare `transaction_id` is the bigint output column,
# which no index holds, and the whole log below the horizon would be sorted at every poll.
READABLE_END = """
SELECT events.transaction_id::text::bigint, events.position FROM events
WHERE events.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""
_INDEXES = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1"
_ERROR_LENGTH = 2000  # of the error stored with a parked event


# The server away, refusing connections, overloaded or shutting down: not the event's fault.
_OUTAGES = (
    OSError,  # refused, reset, unreachable; TimeoutError (pool acquire, nats) is one
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.InterfaceError,  # the connection closed under the client
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, starting up, cancelled
    asyncpg.exceptions.PostgresSystemError,  # 58: I/O error
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby, during a failover
)


def is_outage(error: BaseException) -> bool:
    """Whether an error says PostgreSQL (or the network to it) is away, refusing connections,
    overloaded or shutting down, rather than that an event cannot be applied: an outage holds
    a projection up for as long as it lasts and parks nothing.

    A wrapped error (`raise ... from`) is judged by its causes too: a publish that failed on a
    timeout is an outage.
    """
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, _OUTAGES):
            return True
        cause = cause.__cause__
    return False


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_ERROR_LENGTH]


class _Moved(Exception):
    """The projection's position was moved by another runner since the step read its page."""


@contextlib.asynccontextmanager
async def _turn(
    conn: asyncpg.pool.PoolConnectionProxy, name: str, taken_as_begun: bool
) -> AsyncIterator[None]:
    """A step's transaction: begun with the projection's turn taken in the same round trip when
    `taken_as_begun` (nothing in it may open a transaction of asyncpg's, savepoints included:
    asyncpg refuses them in a transaction it did not begin), else begun by asyncpg, the step
    taking its turn with `LOCK_POSITION`."""
    if not taken_as_begun:
        async with conn.transaction():
            yield
        return
    await conn.execute(_BEGIN_TURN.format(name="'" + name.replace("'", "''") + "'"))
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class UnknownProjection(LookupError):
    """No projection of that name is registered."""


class NotRebuildable(ValueError):
    """The projection owns no tables (it records events or publishes them)."""


class NotParked(LookupError):
    """The projection has no parked event at that position (or it was settled already)."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where a projection is in the log, how far behind its end, and what holds it up."""

    name: str
    position: LogPosition
    events_behind: int
    seconds_behind: float
    updated_at: datetime
    failing: str | None = None  # the error of its last page, while it fails
    parked: int = 0  # events parked and neither applied again nor skipped


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event a projection could not apply, set aside so that it went on with the next."""

    projection: str
    position: LogPosition
    stream_id: UUID
    version: int
    topic: str
    error: str
    parked_at: datetime
    settled: str | None = None  # "applied" by a retry, or "skipped"
    settled_at: datetime | None = None
    settled_by: str | None = None
    reason: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ParkedEvent:
        return cls(
            row["projection"],
            LogPosition(row["transaction_id"], row["position"]),
            *(row[c] for c in ("stream_id", "version", "topic", "error", "parked_at")),
            *(row[c] for c in ("settled", "settled_at", "settled_by", "reason")),
        )


@dataclass(frozen=True, slots=True)
class StuckProjection:
    """A projection that is failing, or that parked events lately: what /ready names."""

    name: str
    failing: str | None
    failing_since: datetime | None
    parked_lately: int
    last_parked_at: datetime | None

    def __str__(self) -> str:
        found = []
        if self.failing is not None:
            since = self.failing_since.isoformat() if self.failing_since else "now"
            found.append(f"failing since {since}: {self.failing}")
        if self.parked_lately:
            latest = self.last_parked_at.isoformat() if self.last_parked_at else "lately"
            found.append(f"{self.parked_lately} event(s) parked, the latest at {latest}")
        return f"{self.name} " + "; ".join(found)


async def stuck_projections(pool: asyncpg.Pool, parked_within: float) -> list[StuckProjection]:
    """The projections failing now, or with events parked in the last `parked_within` seconds
    and not yet applied again or skipped; read from the database, so true whichever process
    runs them."""
    return [StuckProjection(*row) for row in await pool.fetch(_STUCK, parked_within)]


class PositionsAhead:
    """How far projections have got in this process past their recorded positions, through
    rounds that changed nothing (events of other topics only, or pages whose transaction wrote
    nothing): such a round commits nothing durable. Shared by the runners of a process, so that
    a projection that `follows` another goes as far as the other has really got.

    Each entry says that every event of the projection's topics between `since` (a position it
    had recorded) and `ahead` is applied, none leaving anything to record: it stands at `ahead`
    for as long as its recorded position is not behind `since` (a replay from the start puts it
    back there).
    """

    def __init__(self, trust: float = 1.0) -> None:
        self._ahead: dict[str, tuple[LogPosition, LogPosition]] = {}
        # The recorded positions this process's runners last read under a projection's lock
        # or committed, with when (the event loop's time): a runner reads ahead from them
        # without a transaction for `trust` seconds (see `ProjectionRunner._read_ahead`).
        self._recorded: dict[str, tuple[LogPosition, float]] = {}
        self.trust = trust

    def saw(self, name: str, recorded: LogPosition, at: float) -> None:
        """The projection's recorded position, as a runner read it under its lock or committed
        it at `at`."""
        self._recorded[name] = (recorded, at)

    def unsure(self, name: str) -> None:
        """What a runner saw of the projection's position may be wrong (its step failed)."""
        self._recorded.pop(name, None)

    def recorded(self, name: str, now: float) -> LogPosition | None:
        """The projection's recorded position as last seen, if seen in the last `trust`
        seconds: at most where it is (only its runners move it forward, and they say so when
        they commit), unless something outside moved it back meanwhile, which `trust` bounds."""
        found = self._recorded.get(name)
        if found is None or now - found[1] > self.trust:
            return None
        return found[0]

    def of(self, name: str, recorded: LogPosition) -> LogPosition:
        """Where the projection stands, `recorded` being its recorded position."""
        found = self._ahead.get(name)
        if found is None or recorded < found[0]:
            return recorded
        return max(recorded, found[1])

    def passed(
        self, name: str, recorded: LogPosition, start: LogPosition, end: LogPosition
    ) -> None:
        """The projection read from `start` (where `of` put it) to `end`, changing nothing."""
        found = self._ahead.get(name)
        since = found[0] if found is not None and start > recorded else recorded
        self._ahead[name] = (since, end)

    def forget(self, name: str) -> None:
        """The projection's position was recorded: it stands there."""
        self._ahead.pop(name, None)

    def holds(self, name: str) -> bool:
        """Whether the projection has got further than it recorded."""
        return name in self._ahead


class ProjectionRunner:
    """Applies each page and records its new position in one transaction."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: Sequence[Projection[asyncpg.Connection]],
        store: PostgresEventStore | None = None,
        page_size: int = 500,
        poll_interval: float = 0.1,
        rebuild_page_size: int = 5000,
        settle: float = 0.005,
        attempts: int = 3,
        outage: Callable[[BaseException], bool] = is_outage,
        record_every: float = 0.0,
        ahead: PositionsAhead | None = None,
    ) -> None:
        self.pool = pool
        self.rebuild_page_size = rebuild_page_size
        # The projections whose last page failed, with the error: they retry every round,
        # logged once until they recover.
        self.failing: dict[str, str] = {}
        # Told, after a page was applied, the topics of the events it recorded in its
        # transaction (None: not known), e.g. to wake a runner that reads what it recorded.
        self.on_applied: Callable[[frozenset[str] | None], None] | None = None
        # Told after a projection's position moved, recorded or not, e.g. to wake a runner
        # of a projection that follows it.
        self.on_moved: Callable[[], None] | None = None
        # Told the projection's name and the number of events of each page applied (metrics).
        self.on_page: Callable[[str, int], None] | None = None
        # Awaited before each page the running loop reads, e.g. to give way to another lane.
        self.before_page: Callable[[], Awaitable[None]] | None = None
        # Whether the last page read was full: more is waiting to be read.
        self.backlogged = False
        self.settle = settle
        self.projections = {p.name: p for p in projections}
        # The topics whose commits wake the running loop (`wake`): its projections', and
        # those of the projections that follow them, which wait for them to pass.
        self.woken_by: frozenset[str] = frozenset().union(*(p.topics for p in projections))
        # A round that changes nothing (other topics' events only, or a page whose transaction
        # wrote nothing) records where it got at most this often (seconds): the next round
        # starts from where the last one got (`ahead`), and a crash only reads them again.
        self.record_every = record_every
        self.ahead = ahead or PositionsAhead()
        self._recorded_at: dict[str, float] = {}
        self.store = store or PostgresEventStore()
        self.page_size = page_size
        self.poll_interval = poll_interval
        # A page that failed this many rounds in a row (outages aside) is applied in parts in
        # the next, and the events that fail alone are parked.
        self.attempts = attempts
        self.outage = outage
        # Per projection, where its page failed and how many times in a row.
        self._failures: dict[str, tuple[LogPosition, int]] = {}
        # Projections whose failure may be on record in projection_positions (one recorded
        # by an earlier process, until this one applies a page).
        self._maybe_failing: set[str] = set()
        self._wake = asyncio.Event()
        # The readable end of the log when the last poll looked (see `_moved_since_poll`).
        self._polled_end: LogPosition | None = None
        self.log = structlog.get_logger("chorus.projections")

    def _named(self, name: str) -> Projection[asyncpg.Connection]:
        try:
            return self.projections[name]
        except KeyError:
            raise UnknownProjection(name) from None

    async def setup(self) -> None:
        await self.pool.execute(_ENSURE, list(self.projections))

    async def step(self, name: str) -> int | None:
        """Applies the next page: the number of events applied, None at the end of the log.

        A page that failed `attempts` rounds in a row is applied in parts, and each event that
        fails alone is parked; the position moves past the page. Outages fail the step and
        count for nothing.
        """
        projection = self._named(name)
        # A projection whose work is per customer rather than per event takes bigger pages.
        size: int = getattr(projection, "page_size", self.page_size)
        now = asyncio.get_running_loop().time()
        try:
            read = await self._read_ahead(name, projection, size, now)
            if read is not None and not read[1].events:
                # Nothing of its topics: no transaction, no lock (a round that changes nothing
                # has nothing to take turns on).
                recorded, page = read
                position = self.ahead.of(name, recorded)
                self.backlogged = False
                if page.next == recorded:
                    return None
                if not self._recording_due(name):
                    if page.next != position:
                        self.ahead.passed(name, recorded, position, page.next)
                        if self.on_moved is not None:
                            self.on_moved()
                    return None
                # Where it got is to be recorded: by the transaction below.
            # A page read ahead with events takes its turn as the transaction begins, and is
            # checked at its end against where it was read from (a page applied in parts, after
            # failures, is never one: it reads the position under the lock, in a transaction
            # asyncpg began, whose savepoints the parts take).
            ahead = read if read is not None and read[1].events else None
            if name in self._failures:
                ahead = None
            async with self.pool.acquire() as proxy, _turn(proxy, name, ahead is not None):
                conn = cast("asyncpg.Connection", proxy)
                if ahead is not None:
                    recorded = ahead[0]
                else:
                    row = await conn.fetchrow(LOCK_POSITION, name)
                    if row is None or row["position"] is None:
                        raise UnknownProjection(f"{name} has no position; run setup() first")
                    recorded = LogPosition(row["transaction_id"], row["position"])
                    self.ahead.saw(name, recorded, now)
                position = self.ahead.of(name, recorded)
                if read is not None and self.ahead.of(name, read[0]) == position:
                    # What was read ahead starts where the projection stands: the log below
                    # the horizon does not change, so it is this round's page.
                    page = read[1]
                else:
                    until = await self._followed(conn, projection)
                    page = await self.store.read_topics(
                        conn, position, projection.topics, size, until
                    )
                self.backlogged = len(page.events) >= size
                if page.next == recorded:
                    if name in self._maybe_failing:
                        await conn.execute(_RECOVERED, name)
                        self._maybe_failing.discard(name)
                    return None
                moved = page.next != position
                written: frozenset[str] = frozenset()
                quiet = False
                skipped = not page.events and not self._recording_due(name)
                if skipped:
                    # Nothing of its topics up to the readable end: the transaction stays
                    # read-only, and its commit writes nothing to disk.
                    if moved:
                        self.ahead.passed(name, recorded, position, page.next)
                else:
                    parked = await self._apply(conn, projection, position, page.events)
                    telling = self.on_applied is not None and len(page.events) > parked
                    # A page that changed nothing in this transaction (a process that had
                    # nothing to decide; one that records in transactions of its own, which
                    # takes a page again idempotently) is passed as a page of other topics is.
                    passing = not self._recording_due(name)
                    after = page.next
                    moving = (name, str(after.transaction_id), after.position)
                    found = (str(recorded.transaction_id), recorded.position)
                    if telling or passing:
                        row = await conn.fetchrow(_WRITTEN_HERE, *moving, passing, *found)
                        topics, advanced, there = cast("asyncpg.Record", row)
                        written = frozenset(topics) if telling else written
                        quiet = not advanced
                    else:
                        there = await conn.fetchval(_ADVANCE_FROM, *moving, *found) is not None
                    if not there:
                        raise _Moved(name)
                    if quiet:
                        self.ahead.passed(name, recorded, position, after)
                    else:
                        recorded = after
        except _Moved:
            # Another runner moved the position since this process saw it recorded: what the
            # page applied is rolled back, and the page is read again from where it is.
            self.ahead.unsure(name)
            return await self.step(name)
        except Exception as error:
            self.backlogged = False  # a page that fails is no backlog to give way to
            self.ahead.unsure(name)
            await self._record_failing(name, error)
            raise
        self.ahead.saw(name, recorded, now)  # committed
        if moved and self.on_moved is not None:
            self.on_moved()
        if skipped:
            return None  # an empty page ends at the readable end of the log
        if not quiet:
            self.ahead.forget(name)
            self._recorded_at[name] = asyncio.get_running_loop().time()
            self._maybe_failing.discard(name)
        count = len(page.events) - parked
        if count and self.on_applied is not None and written:
            self.on_applied(written)
        if self.on_page is not None:
            self.on_page(name, count)
        return count

    async def _read_ahead(
        self,
        name: str,
        projection: Projection[asyncpg.Connection],
        size: int,
        now: float,
    ) -> tuple[LogPosition, LogPage] | None:
        """The projection's next page, read outside a transaction from where this process saw
        it recorded lately, and that recorded position; None when it saw none lately (nor, for
        a projection that follows others, theirs), or a failure may be on record.

        One statement instead of a transaction's four, for the many rounds that find nothing
        of a projection's topics; a page with events is the page of the step's transaction if
        the projection still stands where it was read from."""
        if name in self._maybe_failing:
            return None
        recorded = self.ahead.recorded(name, now)
        if recorded is None:
            return None
        until: LogPosition | None = None
        followed: tuple[str, ...] = getattr(projection, "follows", ())
        if followed:
            seen = [self.ahead.recorded(other, now) for other in followed]
            if any(other is None for other in seen):
                return None
            until = min(
                self.ahead.of(other, cast("LogPosition", position))
                for other, position in zip(followed, seen, strict=True)
            )
        position = self.ahead.of(name, recorded)
        page = await self.store.read_topics(self.pool, position, projection.topics, size, until)
        return recorded, page

    def _recording_due(self, name: str) -> bool:
        """Whether a position moved past other topics' events only is to be recorded now: at
        most every `record_every` seconds, and at once while a failure is on record."""
        if self.record_every <= 0 or name in self._maybe_failing:
            return True
        since = self._recorded_at.get(name)
        return since is None or asyncio.get_running_loop().time() - since >= self.record_every

    async def _apply(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        position: LogPosition,
        events: list[RecordedEvent],
    ) -> int:
        """Applies a page, or after it failed `attempts` rounds, its parts: the number parked.

        Only the parts run in savepoints, so a failed one leaves nothing in this transaction
        (a page that fails whole fails the transaction, which the next round tries again). A
        projection that writes in transactions of its own (attribution) must take a part
        again idempotently: a failed try may have recorded some of it.
        """
        if not events:
            return 0
        name = projection.name
        where, failed = self._failures.get(name, (position, 0))
        if where != position:
            failed = 0
        if failed < self.attempts:
            try:
                await projection.apply(conn, events)
            except Exception as error:
                if not self.outage(error):
                    self._failures[name] = (position, failed + 1)
                raise
            self._failures.pop(name, None)
            return 0
        self.log.warning("page failed; applying it in parts", projection=name, rounds=failed)
        parked = await self._isolate(conn, projection, events)
        self._failures.pop(name, None)
        return parked

    async def _isolate(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        events: list[RecordedEvent],
    ) -> int:
        """Applies a part in a savepoint; if it fails, its halves, in log order, and so on down
        to single events, which are parked: the number parked."""
        try:
            async with conn.transaction():
                await projection.apply(conn, events)
        except Exception as error:
            if self.outage(error):
                raise
            if len(events) == 1:
                await self._park(conn, projection.name, events[0], error)
                return 1
            half = len(events) // 2
            first = await self._isolate(conn, projection, events[:half])
            return first + await self._isolate(conn, projection, events[half:])
        return 0

    async def _park(
        self, conn: asyncpg.Connection, name: str, event: RecordedEvent, error: Exception
    ) -> None:
        await conn.execute(_PARK, name, event.stream_id, event.version, _describe(error))
        self.log.error(
            "event parked",
            projection=name,
            position=event.position,
            stream_id=str(event.stream_id),
            topic=event.topic,
            error=_describe(error),
        )

    async def _record_failing(self, name: str, error: Exception) -> None:
        """Puts the failure where /ready reads it, in the database, if it answers."""
        self._maybe_failing.add(name)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.execute(_FAILING, name, _describe(error)), 2)

    async def _apply_page(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        position: LogPosition,
        page_size: int,
        set_aside: Collection[int] = (),
    ) -> tuple[int, LogPosition] | None:
        """A rebuild's next page, leaving out the events the live projection set aside."""
        page = await self.store.read_topics(conn, position, projection.topics, page_size)
        if page.next == position:
            return None
        events = [e for e in page.events if e.position not in set_aside]
        if events:
            await projection.apply(conn, events)
        return len(events), page.next

    async def _followed(
        self, conn: asyncpg.Connection, projection: Projection[asyncpg.Connection]
    ) -> LogPosition | None:
        """How far the read models a projection reads (`follows`) have got: it goes no further,
        so what it reads from them includes every event it applies."""
        followed: tuple[str, ...] = getattr(projection, "follows", ())
        if not followed:
            return None
        rows = await conn.fetch(_FOLLOWED, list(followed))
        return min(
            (
                self.ahead.of(row["name"], LogPosition(row["transaction_id"], row["position"]))
                for row in rows
            ),
            default=LogPosition(),
        )

    async def catch_up(self, name: str | None = None, stop: asyncio.Event | None = None) -> int:
        """Applies pages until the readable end of the log (or `stop`); the number applied."""
        total = 0
        for each in [name] if name else list(self.projections):
            while not (stop and stop.is_set()):
                if self.before_page is not None:
                    await self.before_page()
                applied = await self.step(each)
                if applied is None:
                    break
                total += applied
                if not self.backlogged:
                    break  # the page ended at the readable end of the log
        return total

    def wake(self, topics: Collection[str] | None = None) -> None:
        """Asks the running loop to read the log now: a writer just appended events of
        `topics` (None: of topics unknown), and one of them is among `woken_by`."""
        if topics is None or not self.woken_by.isdisjoint(topics):
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Catches up, then follows the log until `stop` is set, polling every `poll_interval`
        seconds or when woken; a wake waits `settle` seconds so a burst of commits is read as
        one page rather than one round per commit.

        Not LISTEN/NOTIFY: a NOTIFY in every append takes PostgreSQL's global notification
        lock at commit and halved concurrent appends in the append benchmark (ADR 0004).
        """
        await self.setup()
        # A failure on record from an earlier run is cleared by this one's first step.
        self._maybe_failing.update(self.projections)
        stopping = asyncio.create_task(stop.wait())
        polled = False
        try:
            while not stop.is_set():
                self._wake.clear()
                if not polled or await self._moved_since_poll():
                    await self._round(stop)
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {woken, stopping},
                    timeout=self.poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                polled = not self._wake.is_set()
                if not polled and not stop.is_set():
                    await asyncio.sleep(self.settle)
        finally:
            stopping.cancel()

    async def _round(self, stop: asyncio.Event) -> None:
        for name in self.projections:
            try:
                await self.catch_up(name, stop)
                self.failing.pop(name, None)
            except Exception as error:
                # One failing projection must not hold the others up; it retries.
                if name not in self.failing:
                    self.log.exception("projection failed", projection=name)
                self.failing[name] = f"{type(error).__name__}: {error}"

    async def _moved_since_poll(self) -> bool:
        """Whether a poll has work: the readable end of the log moved since the last poll, or
        a projection fails, or got further than it recorded. A wake does not ask: the commits
        that wake a lane moved the end."""
        if self.failing or self._maybe_failing:
            return True
        if any(self.ahead.holds(name) for name in self.projections):
            return True
        try:
            row = await self.pool.fetchrow(READABLE_END)
        except Exception:
            return True  # the round finds out what is wrong, and says so
        end = LogPosition() if row is None else LogPosition(row[0], row[1])
        moved = end != self._polled_end
        self._polled_end = end
        return moved

    async def status(self) -> list[ProjectionStatus]:
        await self.setup()
        rows = await self.pool.fetch(_STATUS, list(self.projections))
        order = {name: place for place, name in enumerate(self.projections)}
        rows = sorted(rows, key=lambda row: order.get(row["name"], len(order)))
        return [
            ProjectionStatus(
                row["name"],
                LogPosition(row["transaction_id"], row["position"]),
                row["events"],
                row["seconds"],
                row["updated_at"],
                row["failing"],
                row["parked"],
            )
            for row in rows
        ]

    async def parked(self, name: str | None = None) -> list[ParkedEvent]:
        """The events parked and not settled, of one projection or of all, in log order."""
        names = [self._named(name).name] if name else list(self.projections)
        return [ParkedEvent.from_row(row) for row in await self.pool.fetch(_PARKED, names)]

    async def parked_counts(self) -> dict[str, int]:
        """How many events each projection has parked and not settled (0 for none)."""
        rows = await self.pool.fetch(_PARKED_COUNTS, list(self.projections))
        return dict.fromkeys(self.projections, 0) | {row[0]: row[1] for row in rows}

    async def retry(self, name: str, by: str) -> tuple[list[ParkedEvent], list[ParkedEvent]]:
        """Applies the projection's parked events again, in log order, each in a transaction
        of its own: those applied are settled (`applied`, by whom, when); the others stay
        parked with their new error. The events applied and those still parked.

        The projection's position is past them already, so each is applied after later
        events: right for projections that record or publish facts, while a read model that
        folds events per customer may be better rebuilt.
        """
        projection = self._named(name)
        applied: list[ParkedEvent] = []
        still: list[ParkedEvent] = []
        for parked in await self.parked(name):
            async with self.pool.acquire() as proxy, proxy.transaction():
                conn = cast("asyncpg.Connection", proxy)
                await conn.fetchrow(LOCK_POSITION, name)
                if await conn.fetchrow(_CLAIM_PARKED, name, parked.position.position) is None:
                    continue  # settled meanwhile
                error = await self._apply_again(conn, projection, parked)
                if error is None:
                    row = await conn.fetchrow(
                        _SETTLE, name, parked.position.position, "applied", by, None
                    )
                else:
                    await conn.execute(_STILL_PARKED, name, parked.position.position, error)
                    row = await conn.fetchrow(_SETTLED, name, parked.position.position)
            (still if error else applied).append(ParkedEvent.from_row(cast("asyncpg.Record", row)))
            self.log.info(
                "parked event retried",
                projection=name,
                position=parked.position.position,
                error=error,
            )
        if applied and self.on_applied is not None:
            self.on_applied(None)
        return applied, still

    async def _apply_again(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        parked: ParkedEvent,
    ) -> str | None:
        """Applies a parked event alone, in a savepoint: None, or the error it failed with."""
        row = await conn.fetchrow(_PARKED_EVENT, parked.stream_id, parked.version)
        if row is None:
            return "the event is not in the log"
        (event,) = await self.store.recorded(conn, [row])
        try:
            async with conn.transaction():
                await projection.apply(conn, [event])
        except Exception as error:
            if self.outage(error):
                raise
            return _describe(error)
        return None

    async def skip(self, name: str, position: int, reason: str, by: str) -> ParkedEvent:
        """Drops a parked event for good: it stays on record as skipped, by whom, when, why."""
        self._named(name)
        row = await self.pool.fetchrow(_SETTLE, name, position, "skipped", by, reason)
        if row is None:
            found = await self.pool.fetchrow(_SETTLED, name, position)
            if found is None:
                raise NotParked(f"{name} has no parked event at position {position}")
            raise NotParked(
                f"{name}'s event at position {position} was {found['settled']} already"
                f" ({found['settled_at'].isoformat()} by {found['settled_by']})"
            )
        self.log.warning("parked event skipped", projection=name, position=position, by=by)
        return ParkedEvent.from_row(row)

    async def rebuild(self, name: str) -> LogPosition:
        """Builds the projection again from the start into fresh tables, then swaps them in.

        The bulk of the work runs beside the live projection; only the last pages and the
        renames hold its position row, so readers see the old tables until the new ones.

        Events the live projection parked or skipped are left out, as they are from it; one
        applied again by a retry is applied in its place in the log.

        A projection may load its fresh tables its own way: `prepare_rebuild(conn)`, if it has
        one, runs on the empty fresh tables before the first page (to drop indexes, say), and
        `finish_rebuild(conn)` after the pages read without the lock (to build them again);
        the last pages, under the lock, are applied as in the live projection.
        """
        projection = self._named(name)
        if not projection.tables:
            raise NotRebuildable(
                f"{name} records facts rather than a read model; nothing to rebuild"
            )
        fresh = projection.writing_to(REBUILD_SUFFIX)
        await self.setup()
        async with self.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            for table in projection.tables:
                await conn.execute(
                    f"DROP TABLE IF EXISTS {table}{REBUILD_SUFFIX};"
                    f" CREATE TABLE {table}{REBUILD_SUFFIX} (LIKE {table} INCLUDING ALL)"
                )
            prepare = getattr(fresh, "prepare_rebuild", None)
            if prepare is not None:
                await prepare(conn)
            position = LogPosition()
            set_aside = {row[0] for row in await conn.fetch(_SET_ASIDE, name)}
            # Millions of short-lived objects go through here; frozen, the process's long-lived
            # ones stay out of every full collection (a third of the Python time otherwise).
            # Left as it is if something else froze them.
            freeze = gc.get_freeze_count() == 0
            if freeze:
                gc.freeze()
            try:
                while True:
                    async with conn.transaction():
                        moved = await self._apply_page(
                            conn, fresh, position, self.rebuild_page_size, set_aside
                        )
                    if moved is None:
                        break
                    position = moved[1]
            finally:
                if freeze:
                    gc.unfreeze()
            finish = getattr(fresh, "finish_rebuild", None)
            if finish is not None:
                async with conn.transaction():
                    await finish(conn)
            async with conn.transaction():
                await conn.fetchrow(LOCK_POSITION, name)
                set_aside = {row[0] for row in await conn.fetch(_SET_ASIDE, name)}
                while moved := await self._apply_page(
                    conn, fresh, position, self.rebuild_page_size, set_aside
                ):
                    position = moved[1]
                for table in projection.tables:
                    await self._swap(conn, table)
                await conn.execute(_ADVANCE, name, str(position.transaction_id), position.position)
        self.log.info("projection rebuilt", projection=name, position=position)
        return position

    async def _swap(self, conn: asyncpg.Connection, table: str) -> None:
        await conn.execute(
            f"DROP TABLE {table}; ALTER TABLE {table}{REBUILD_SUFFIX} RENAME TO {table}"
        )
        for row in await conn.fetch(_INDEXES, table):
            index: str = row["indexname"]
            prefix = table + REBUILD_SUFFIX
            if index.startswith(prefix):
                await conn.execute(f"ALTER INDEX {index} RENAME TO {table}{index[len(prefix) :]}")
