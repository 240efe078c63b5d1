"""Durable schedulers: work that falls due (deferred messages, channel fallbacks) is polled for;
its state lives in PostgreSQL, so restarts lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["DueWorkScheduler"]


class DueWorkScheduler:
    """Calls `work(batch)` (which returns how much it did) until there is nothing due, then
    waits `poll_every` seconds."""

    def __init__(
        self,
        work: Callable[[int], Awaitable[int]],
        *,
        name: str,
        poll_every: float = 0.5,
        batch: int = 100,
    ) -> None:
        self.work = work
        self.name = name
        self.poll_every = poll_every
        self.batch = batch
        self.log = structlog.get_logger(f"chorus.{name}")
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the polling loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self.work(self.batch)
            except Exception:
                self.log.exception("due work failed", worker=self.name)
                done = 0
            if done:
                self.log.info("due work done", worker=self.name, count=done)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_every)
