"""The durable scheduler: deferred messages are decided again when they fall due."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from application.messages.redecide_due import RedecideDueMessages

__all__ = ["DeferredMessageScheduler"]


class DeferredMessageScheduler:
    """Polls for due messages; their state lives in PostgreSQL, so restarts lose nothing."""

    def __init__(
        self, redecide: RedecideDueMessages, *, poll_every: float = 0.5, batch: int = 100
    ) -> None:
        self.redecide = redecide
        self.poll_every = poll_every
        self.batch = batch
        self.log = structlog.get_logger("chorus.scheduler")
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the polling loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="deferred-message-scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                decided = await self.redecide(self.batch)
            except Exception:
                self.log.exception("deciding due messages failed")
                decided = 0
            if decided:
                self.log.info("due messages decided", count=decided)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_every)
