"""The ingest baseline: `executemany` of the same signal rows, one transaction per batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from bench.timing import run_all

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bench.signals import RawRow

__all__ = ["raw_executemany"]

_TABLE = """
CREATE TABLE IF NOT EXISTS bench_signals_raw (
    id          text        PRIMARY KEY,
    type        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    identities  jsonb       NOT NULL,
    properties  jsonb       NOT NULL
)
"""
_INSERT = """
INSERT INTO bench_signals_raw (id, type, occurred_at, identities, properties)
VALUES ($1, $2, $3, $4, $5)
"""


async def raw_executemany(
    dsn: str,
    batches: Sequence[Sequence[RawRow]],
    concurrency: int,
    warmup: Sequence[Sequence[RawRow]] = (),
) -> tuple[int, float]:
    """Inserts every batch with `concurrency` connections; returns (rows, seconds)."""
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        await pool.execute(_TABLE)

        async def insert(batch: Sequence[RawRow]) -> int:
            async with pool.acquire() as conn, conn.transaction():
                await conn.executemany(_INSERT, batch)
            return len(batch)

        await run_all(warmup, concurrency, insert)
        return await run_all(batches, concurrency, insert)
    finally:
        await pool.close()
