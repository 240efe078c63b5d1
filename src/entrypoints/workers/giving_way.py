"""A lane that reads what another records gives way to it while it has a backlog.

Attribution is the head of the pipeline: the read models, the trigger matcher and the outbound
publisher all read the `Signal.Recorded` events it appends. After a burst of signals, a lane
that chases it page by page takes half the machine from it (the signal activity read model
costs PostgreSQL about as much as attribution itself) and reads small pages where, a moment
later, it would read big ones. So a lane behind attribution waits while attribution has a
backlog, then reads what it recorded in full pages.

Never for long: waiting spends a budget of `burst` seconds, and every second spent not waiting
earns one back, up to `burst`. A burst of a couple of seconds' attribution is attributed first;
under a load that attribution cannot keep up with, the lanes behind it still run at least half
the time. Under a steady load that attribution keeps up with it has no backlog and nobody
waits: a trigger's latency is what it was (ADR 0012).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["GivingWay"]


class GivingWay:
    """Awaited before each page of a lane: returns once `ahead` has no backlog, or the budget
    of waiting is spent."""

    def __init__(
        self,
        ahead: Callable[[], bool],
        burst: float = 2.0,
        check_every: float = 0.005,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ahead = ahead
        self.burst = burst
        self.check_every = check_every
        self.clock = clock
        self.budget = burst
        self._since = clock()  # when this lane last stopped waiting
        self.waited = 0.0  # seconds in all

    async def __call__(self) -> None:
        if not self.ahead():
            return
        started = self.clock()
        self.budget = min(self.burst, self.budget + (started - self._since))
        now = started
        while self.ahead() and now - started < self.budget:
            await asyncio.sleep(self.check_every)
            now = self.clock()
        self.budget -= now - started
        self.waited += now - started
        self._since = now
