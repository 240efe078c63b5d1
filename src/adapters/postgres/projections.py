"""Runs projections over the global log: catch up from their position, then follow it live."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import structlog

from adapters.postgres.event_store import LogPosition, PostgresEventStore

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    import asyncpg

    from ports.projections import Projection

__all__ = ["ProjectionRunner", "ProjectionStatus", "UnknownProjection"]
REBUILD_SUFFIX = "__rebuild"

_ENSURE = """
INSERT INTO projection_positions (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING
"""
# The row lock makes runners of one projection take turns, and holds a rebuild's swap apart.
_LOCK = """
SELECT transaction_id::text::bigint AS transaction_id, position
FROM projection_positions WHERE name = $1 FOR UPDATE
"""
_ADVANCE = """
UPDATE projection_positions SET transaction_id = $2::text::xid8, position = $3, updated_at = now()
WHERE name = $1
"""
_STATUS = """
SELECT p.name, p.transaction_id::text::bigint AS transaction_id, p.position, p.updated_at,
       behind.events, coalesce(extract(epoch FROM now() - behind.oldest), 0)::float8 AS seconds
FROM projection_positions p
CROSS JOIN LATERAL (
    SELECT count(*) AS events, min(e.occurred_at) AS oldest FROM events e
    WHERE (e.transaction_id, e.position) > (p.transaction_id, p.position)
) behind
WHERE p.name = ANY($1::text[])
ORDER BY p.name
"""
_INDEXES = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1"


class UnknownProjection(LookupError):
    """No projection of that name is registered."""


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
    ) -> None:
        self.pool = pool
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

    async def step(self, name: str) -> int:
        """Applies the next page; the number of log events it moved past."""
        projection = self._named(name)
        async with self.pool.acquire() as proxy, proxy.transaction():
            conn = cast("asyncpg.Connection", proxy)
            row = await conn.fetchrow(_LOCK, name)
            if row is None:
                raise UnknownProjection(f"{name} has no position; run setup() first")
            position = LogPosition(row["transaction_id"], row["position"])
            moved = await self._apply_page(conn, projection, position)
            if moved is None:
                return 0
            count, after = moved
            await conn.execute(_ADVANCE, name, str(after.transaction_id), after.position)
            return count

    async def _apply_page(
        self,
        conn: asyncpg.Connection,
        projection: Projection[asyncpg.Connection],
        position: LogPosition,
    ) -> tuple[int, LogPosition] | None:
        page = await self.store.read_log(conn, position, self.page_size)
        if not page.events:
            return None
        handled = [e for e in page.events if e.topic in projection.topics]
        if handled:
            await projection.apply(conn, handled)
        return len(page.events), page.next

    async def catch_up(self, name: str | None = None) -> int:
        """Applies pages until the readable end of the log; the number of events moved past."""
        total = 0
        for each in [name] if name else list(self.projections):
            while moved := await self.step(each):
                total += moved
        return total

    def wake(self) -> None:
        """Asks the running loop to read the log now (a writer in this process just appended)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Catches up, then follows the log until `stop` is set, polling every `poll_interval`
        seconds or when woken.

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
                        await self.catch_up(name)
                    except Exception:
                        # One failing projection must not hold the others up; it retries.
                        self.log.exception("projection failed", projection=name)
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {woken, stopping},
                    timeout=self.poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
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
        """
        projection = self._named(name)
        fresh = projection.writing_to(REBUILD_SUFFIX)
        await self.setup()
        async with self.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            for table in projection.tables:
                await conn.execute(
                    f"DROP TABLE IF EXISTS {table}{REBUILD_SUFFIX};"
                    f" CREATE TABLE {table}{REBUILD_SUFFIX} (LIKE {table} INCLUDING ALL)"
                )
            position = LogPosition()
            while True:
                async with conn.transaction():
                    moved = await self._apply_page(conn, fresh, position)
                if moved is None:
                    break
                position = moved[1]
            async with conn.transaction():
                await conn.fetchrow(_LOCK, name)
                while moved := await self._apply_page(conn, fresh, position):
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
