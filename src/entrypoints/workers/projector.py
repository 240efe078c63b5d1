"""The projector: keeps the read models following the event log while the service runs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from entrypoints.metrics import PROJECTION_EVENTS, PROJECTION_FAILING, PROJECTION_PARKED

if TYPE_CHECKING:
    from adapters.postgres.projections import ProjectionRunner
    from entrypoints.workers.bell import CommitBell

__all__ = ["Projector"]

REPORT_EVERY = 1.0  # seconds between updates of chorus_projection_failing and _parked_events
log = structlog.get_logger("chorus.projections")


class Projector:
    """Runs the projection runner's follow loop on a task, stopped with the service."""

    def __init__(self, runner: ProjectionRunner, bell: CommitBell | None = None) -> None:
        self.runner = runner
        if bell is not None:
            bell.listen(runner.wake)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def problem(self) -> str | None:
        """What keeps a projection from moving, for /ready's detail."""
        failing = self.runner.failing
        return "; ".join(f"{name} failing: {error}" for name, error in failing.items()) or None

    async def start(self) -> None:
        self.runner.on_page = _count_page
        await self.runner.setup()
        self._stop.clear()
        self._task = asyncio.create_task(self.runner.run(self._stop), name="projector")
        self._gauges = asyncio.create_task(self._report_failing(), name="projector-gauges")

    async def _report_failing(self) -> None:
        """Keeps chorus_projection_failing and chorus_projection_parked_events current (a
        gauge that other processes read from its file cannot be computed when read)."""
        while True:
            for name in self.runner.projections:
                PROJECTION_FAILING.labels(name).set(float(name in self.runner.failing))
            try:
                parked = await asyncio.wait_for(self.runner.parked_counts(), REPORT_EVERY)
            except Exception as error:  # the database away: the last counts stand
                log.debug("parked events not counted", error=repr(error))
            else:
                for name, count in parked.items():
                    PROJECTION_PARKED.labels(name).set(count)
            await asyncio.sleep(REPORT_EVERY)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
            self._gauges = None


def _count_page(name: str, events: int) -> None:
    PROJECTION_EVENTS.labels(name).inc(events)
