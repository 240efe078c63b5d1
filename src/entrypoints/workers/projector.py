"""The projector: keeps the read models following the event log while the service runs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from entrypoints.metrics import PROJECTION_FAILING

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters.postgres.projections import ProjectionRunner
    from entrypoints.workers.bell import CommitBell

__all__ = ["Projector"]


class Projector:
    """Runs the projection runner's follow loop on a task, stopped with the service."""

    def __init__(self, runner: ProjectionRunner, bell: CommitBell | None = None) -> None:
        self.runner = runner
        if bell is not None:
            bell.listen(runner.wake)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def problem(self) -> str | None:
        """What keeps a projection from moving, for /ready's detail (it stays ready)."""
        failing = self.runner.failing
        return "; ".join(f"{name} failing: {error}" for name, error in failing.items()) or None

    def _failing(self, name: str) -> Callable[[], float]:
        return lambda: float(name in self.runner.failing)

    async def start(self) -> None:
        for name in self.runner.projections:
            PROJECTION_FAILING.labels(name).set_function(self._failing(name))
        await self.runner.setup()
        self._stop.clear()
        self._task = asyncio.create_task(self.runner.run(self._stop), name="projector")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
