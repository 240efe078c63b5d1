"""The manual clock's time in PostgreSQL, so a restart resumes where it stood; and a clock that
follows it, for a process that reads it but never moves it."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Self

import asyncpg

__all__ = ["FollowedClock", "PostgresClockStore"]


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


class FollowedClock:
    """The manual clock as the service that moves it keeps it in PostgreSQL, read again every
    `every` seconds on a thread of its own (the demo's fake providers, a process without an
    event loop of its own, report on it). Until the service has started the clock (no database
    yet, no `manual_clock` row), it tells the wall's time."""

    def __init__(self, database_url: str, *, every: float = 0.2) -> None:
        self.database_url = database_url
        self.every = every
        self._now: datetime | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    def start(self) -> Self:
        """Starts following; returns once the time was read, or could not be yet."""
        read = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._follow(read),), name="followed-clock", daemon=True
        )
        self._thread.start()
        read.wait(10)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    async def _follow(self, read: threading.Event) -> None:
        connection: asyncpg.Connection | None = None
        while not self._stopping.is_set():
            try:
                connection = connection or await asyncpg.connect(self.database_url, timeout=5)
                self._now = await connection.fetchval("SELECT now FROM manual_clock") or self._now
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                # Not there yet (the service migrates and starts the clock after its fakes
                # start), or gone for a while: the time last read, or the wall's, until it is.
                if connection is not None and connection.is_closed():
                    connection = None
            read.set()
            await asyncio.sleep(self.every)
        if connection is not None:
            await connection.close()
