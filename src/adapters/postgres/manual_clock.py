"""The manual clock's time in PostgreSQL, so a restart resumes where it stood."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

__all__ = ["PostgresClockStore"]


class PostgresClockStore:
    """One row, `manual_clock`, written each time the clock is set or advanced."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def load(self) -> datetime | None:
        now: datetime | None = await self.pool.fetchval("SELECT now FROM manual_clock")
        return now

    async def save(self, now: datetime) -> None:
        await self.pool.execute(
            """INSERT INTO manual_clock (now) VALUES ($1)
               ON CONFLICT (one) DO UPDATE SET now = excluded.now""",
            now,
        )
