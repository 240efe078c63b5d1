"""The manual clock's time in PostgreSQL, so a restart resumes where it stood."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

__all__ = ["PostgresClockStore"]


class PostgresClockStore:
    """One row, `manual_clock`: written when the first process starts the clock, then each time
    it is set or advanced. Every process and `chorus` command with the manual clock reads it."""

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

    async def start(self, now: datetime) -> datetime:
        # Two processes starting at once both keep the first one's time.
        await self.pool.execute(
            "INSERT INTO manual_clock (now) VALUES ($1) ON CONFLICT (one) DO NOTHING", now
        )
        stored: datetime = await self.pool.fetchval("SELECT now FROM manual_clock")
        return stored
