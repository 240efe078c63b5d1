"""Commits received signals, once each by the producer's event id; attribution follows."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from application.customer.ingest_signals import IngestSignals
    from ports.clock import Clock
    from ports.intake import Attribution, ReceivedSignal, SignalIntake

__all__ = ["AcceptSignals"]


class AcceptSignals:
    """Answers as soon as the signals are durable; `attributed` waits for their customers.

    Signals that act on their customer (an inbound message, a consent change: an opt-out
    takes effect at once) are attributed before the answer too; attribution from the log then
    finds them recorded and skips them.
    """

    def __init__(
        self,
        intake: SignalIntake,
        clock: Clock,
        ingest: IngestSignals,
        poll_every: float = 0.01,
    ) -> None:
        self.intake = intake
        self.clock = clock
        self.ingest = ingest
        self.poll_every = poll_every

    async def __call__(self, signals: Sequence[ReceivedSignal]) -> list[bool]:
        """For each signal, whether it was new (False: its event id was received before)."""
        new = await self.intake.receive(signals, self.clock.now())
        at_once = [s.at_once for s, fresh in zip(signals, new, strict=True) if fresh and s.at_once]
        if at_once:
            await self.ingest(at_once)
        return new

    async def attributed(self, event_ids: Collection[str], within: float) -> dict[str, Attribution]:
        """Where each signal (by producer event id) ended, once every one of them is on its
        customer or refused, or `within` seconds passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        wait = self.poll_every
        while True:
            found = await self.intake.attributed(event_ids)
            left = deadline - loop.time()
            if len(found) >= len(event_ids) or left <= 0:
                return found
            await asyncio.sleep(min(wait, left))
            wait = min(wait * 2, 0.1)
