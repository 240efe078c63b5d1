"""Each read model rebuilt into scratch tables beside the live one and compared with it.

The rebuild is applied as `ProjectionRunner.rebuild` applies it (the events the live
projection parked or skipped left out), but only up to where the live projection stands: most
of it without a lock, the last pages under the projection's advisory lock, which holds the
live projection still while the tables are compared. The live tables are only read; the
scratch tables (`<table>__verify`) are dropped whatever happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from adapters.postgres.event_store import LogPosition
from adapters.postgres.log_table_rebuilds import PostgresLogTableRebuilds
from adapters.postgres.projections import LOCK_POSITION
from ports.verification import ReadModelComparison, TableComparison

if TYPE_CHECKING:
    from collections.abc import Collection

    import asyncpg

    from adapters.postgres.projections import ProjectionRunner
    from ports.projections import Projection

__all__ = ["SCRATCH_SUFFIX", "PostgresReadModelRebuilds"]

SCRATCH_SUFFIX = "__verify"
_PAGE = 5_000
_POSITION = """
SELECT transaction_id::text::bigint, position FROM projection_positions WHERE name = $1
"""
_SET_ASIDE = """
SELECT position FROM parked_events WHERE projection = $1 AND settled IS DISTINCT FROM 'applied'
"""
# Rows as text: every column type compares, json included, and a difference prints as a row.
_COMPARE = """
WITH live AS (SELECT t::text AS row FROM {live} t),
     rebuilt AS (SELECT t::text AS row FROM {rebuilt} t),
     only_live AS (SELECT row FROM live EXCEPT ALL SELECT row FROM rebuilt),
     only_rebuilt AS (SELECT row FROM rebuilt EXCEPT ALL SELECT row FROM live)
SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM only_live),
       (SELECT count(*) FROM only_rebuilt),
       ARRAY(SELECT 'only in the live table: ' || row FROM only_live ORDER BY row LIMIT $1),
       ARRAY(SELECT 'only in its rebuild: ' || row FROM only_rebuilt ORDER BY row LIMIT $1)
"""


class PostgresReadModelRebuilds:
    """Over the runner's projections that own tables, and the tables written with their
    events (`log_table_rebuilds`)."""

    def __init__(
        self,
        runner: ProjectionRunner,
        page_size: int = _PAGE,
        log_tables: PostgresLogTableRebuilds | None = None,
    ) -> None:
        self.runner = runner
        self.page_size = page_size
        self.log_tables = log_tables or PostgresLogTableRebuilds(runner.pool, runner.store.codec)

    def names(self) -> list[str]:
        projections = sorted(name for name, p in self.runner.projections.items() if p.tables)
        return [*projections, *self.log_tables.names()]

    async def compare(self, name: str, shown: int) -> ReadModelComparison:
        if name not in self.runner.projections:
            return await self.log_tables.compare(name, shown)
        projection = self.runner.projections[name]
        fresh = projection.writing_to(SCRATCH_SUFFIX)
        async with self.runner.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            try:
                return await self._compare(conn, name, projection, fresh, shown)
            finally:
                for table in projection.tables:
                    await conn.execute(f"DROP TABLE IF EXISTS {table}{SCRATCH_SUFFIX}")

    async def _compare(
        self,
        conn: asyncpg.Connection,
        name: str,
        projection: Projection[asyncpg.Connection],
        fresh: Projection[asyncpg.Connection],
        shown: int,
    ) -> ReadModelComparison:
        for table in projection.tables:
            await conn.execute(
                f"DROP TABLE IF EXISTS {table}{SCRATCH_SUFFIX};"
                f" CREATE TABLE {table}{SCRATCH_SUFFIX} (LIKE {table} INCLUDING ALL)"
            )
        prepare = getattr(fresh, "prepare_rebuild", None)
        if prepare is not None:
            await prepare(conn)
        live = await self._live(conn, name)
        set_aside = {row[0] for row in await conn.fetch(_SET_ASIDE, name)}
        position, applied = await self._apply(conn, fresh, LogPosition(), live, set_aside)
        finish = getattr(fresh, "finish_rebuild", None)
        if finish is not None:
            async with conn.transaction():
                await finish(conn)
        async with conn.transaction():
            # The live projection waits here until the comparison is done.
            row = await conn.fetchrow(LOCK_POSITION, name)
            assert row is not None
            live = LogPosition(row["transaction_id"] or 0, row["position"] or 0)
            set_aside = {row[0] for row in await conn.fetch(_SET_ASIDE, name)}
            position, more = await self._apply(conn, fresh, position, live, set_aside)
            tables = [await self._table(conn, table, shown) for table in projection.tables]
        return ReadModelComparison(name, applied + more, tables)

    async def _live(self, conn: asyncpg.Connection, name: str) -> LogPosition:
        row = await conn.fetchrow(_POSITION, name)
        if row is None or row[0] is None:
            return LogPosition()
        return LogPosition(row[0], row[1])

    async def _apply(
        self,
        conn: asyncpg.Connection,
        fresh: Projection[asyncpg.Connection],
        position: LogPosition,
        until: LogPosition,
        set_aside: Collection[int],
    ) -> tuple[LogPosition, int]:
        """Pages applied to the scratch tables up to `until`, where the live one stands."""
        applied = 0
        store = self.runner.store
        while position < until:
            async with conn.transaction():
                page = await store.read_topics(conn, position, fresh.topics, self.page_size, until)
                if page.next == position:
                    break
                events = [e for e in page.events if e.position not in set_aside]
                if events:
                    await fresh.apply(conn, events)
                applied += len(events)
                position = page.next
        return position, applied

    async def _table(self, conn: asyncpg.Connection, table: str, shown: int) -> TableComparison:
        row = await conn.fetchrow(
            _COMPARE.format(live=table, rebuilt=f"{table}{SCRATCH_SUFFIX}"), shown
        )
        assert row is not None
        return TableComparison(table, row[0], row[1], row[2], [*row[3], *row[4]])
