"""Runs projections over the global log: catch up from their position, then follow it live."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import structlog

from adapters.postgres.event_store import LogPosition, PostgresEventStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    import asyncpg

    from ports.projections import Projection

__all__ = [
    "LOCK_POSITION",
    "NotRebuildable",
    "ProjectionRunner",
    "ProjectionStatus",
    "UnknownProjection",
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
UPDATE projection_positions SET transaction_id = $2::text::xid8, position = $3, updated_at = now()
WHERE name = $1
"""
_STATUS = """
SELECT p.name, p.transaction_id::text::bigint AS transaction_id, p.position, p.updated_at,
       behind.events,
       greatest(coalesce(extract(epoch FROM now() - behind.oldest), 0), 0)::float8 AS seconds
FROM projection_positions p
CROSS JOIN LATERAL (
    SELECT count(*) AS events, min(e.occurred_at) AS oldest FROM events e
    WHERE (e.transaction_id, e.position) > (p.transaction_id, p.position)
) behind
WHERE p.name = ANY($1::text[])
ORDER BY p.name
"""
_FOLLOWED = """
SELECT transaction_id::text::bigint AS transaction_id, position FROM projection_positions
WHERE name = ANY($1::text[]) ORDER BY transaction_id, position LIMIT 1
"""
_INDEXES = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1"


class UnknownProjection(LookupError):
    """No projection of that name is registered."""


class NotRebuildable(ValueError):
    """The projection owns no tables (it records events or publishes them)."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where a projection is in the log, and how far behind its end."""

    name: str
    position: LogPosition
    events_behind: int
    seconds_behind: float
    updated_at: datetime


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
    ) -> None:
        self.pool = pool
        self.rebuild_page_size = rebuild_page_size
        # The projections whose last page failed, with the error: they retry every round,
        # logged once until they recover.
        self.failing: dict[str, str] = {}
        # Told after a page was applied, e.g. to wake a runner that reads what it recorded.
        self.on_applied: Callable[[], None] | None = None
        # Told the projection's name and the number of events of each page applied (metrics).
        self.on_page: Callable[[str, int], None] | None = None
        self.settle = settle
        self.projections = {p.name: p for p in projections}
        self.store = store or PostgresEventStore()
        self.page_size = page_size
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()
        self.log = structlog.get_logger("chorus.projections")

    def _named(self, name: str) -> Projection[asyncpg.Connection]:
        try:
            return self.projections[name]
        except KeyError:
            raise UnknownProjection(name) from None

    async def setup(self) -> None:
        await self.pool.execute(_ENSURE, list(self.projections))

    async def step(self, name: str) -> int | None:
        """Applies the next page: the number of events applied, None at the end of the log."""
        projection = self._named(name)
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            row = await conn.fetchrow(LOCK_POSITION, name)
            if row is None or row["position"] is None:
                raise UnknownProjection(f"{name} has no position; run setup() first")
            position = LogPosition(row["transaction_id"], row["position"])
            until = await self._followed(conn, projection)
            # A projection whose work is per customer rather than per event takes bigger pages.
            size: int = getattr(projection, "page_size", self.page_size)
            moved = await self._apply_page(conn, projection, position, size, until)
            if moved is None:
                return None
            count, after = moved
            await conn.execute(_ADVANCE, name, str(after.transaction_id), after.position)
        if count and self.on_applied is not None:
            self.on_applied()
        if self.on_page is not None:
            self.on_page(name, count)
        return count

    async def _apply_page(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        position: LogPosition,
        page_size: int,
        until: LogPosition | None = None,
    ) -> tuple[int, LogPosition] | None:
        page = await self.store.read_topics(conn, position, projection.topics, page_size, until)
        if page.next == position:
            return None
        if page.events:
            await projection.apply(conn, page.events)
        return len(page.events), page.next

    async def _followed(
        self, conn: asyncpg.Connection, projection: Projection[asyncpg.Connection]
    ) -> LogPosition | None:
        """How far the read models a projection reads (`follows`) have got: it goes no further,
        so what it reads from them includes every event it applies."""
        followed: tuple[str, ...] = getattr(projection, "follows", ())
        if not followed:
            return None
        row = await conn.fetchrow(_FOLLOWED, list(followed))
        if row is None or row["transaction_id"] is None:
            return LogPosition()
        return LogPosition(row["transaction_id"], row["position"])

    async def catch_up(self, name: str | None = None, stop: asyncio.Event | None = None) -> int:
        """Applies pages until the readable end of the log (or `stop`); the number applied."""
        total = 0
        for each in [name] if name else list(self.projections):
            while not (stop and stop.is_set()) and (applied := await self.step(each)) is not None:
                total += applied
        return total

    def wake(self) -> None:
        """Asks the running loop to read the log now (a writer in this process just appended)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Catches up, then follows the log until `stop` is set, polling every `poll_interval`
        seconds or when woken; a wake waits `settle` seconds so a burst of commits is read as
        one page rather than one round per commit.

        Not LISTEN/NOTIFY: a NOTIFY in every append takes PostgreSQL's global notification
        lock at commit and halved concurrent appends in the append benchmark (ADR 0004).
        """
        await self.setup()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                for name in self.projections:
                    try:
                        await self.catch_up(name, stop)
                        self.failing.pop(name, None)
                    except Exception as error:
                        # One failing projection must not hold the others up; it retries.
                        if name not in self.failing:
                            self.log.exception("projection failed", projection=name)
                        self.failing[name] = f"{type(error).__name__}: {error}"
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {woken, stopping},
                    timeout=self.poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                if self._wake.is_set() and not stop.is_set():
                    await asyncio.sleep(self.settle)
        finally:
            stopping.cancel()

    async def status(self) -> list[ProjectionStatus]:
        await self.setup()
        rows = await self.pool.fetch(_STATUS, list(self.projections))
        return [
            ProjectionStatus(
                row["name"],
                LogPosition(row["transaction_id"], row["position"]),
                row["events"],
                row["seconds"],
                row["updated_at"],
            )
            for row in rows
        ]

    async def rebuild(self, name: str) -> LogPosition:
        """Builds the projection again from the start into fresh tables, then swaps them in.

        The bulk of the work runs beside the live projection; only the last pages and the
        renames hold its position row, so readers see the old tables until the new ones.

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
                            conn, fresh, position, self.rebuild_page_size
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
                while moved := await self._apply_page(
                    conn, fresh, position, self.rebuild_page_size
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
