"""Attributes received signals to customers, following the log: the asynchronous half of ingest.

Exactly once without sharing the runner's transaction: a page is recorded by `IngestSignals`
in one transaction of its own, and a page applied again after a crash finds its signals
recorded (their streams exist) and changes nothing.

A signal that a rule of its customer refuses (a `DomainError`: say, one attribute too many
for a customer at the limit) cannot hold the others up, nor be retried forever: the page is
split until that signal is alone, the others are recorded, and it is refused (`Signal.Refused`
on its intake stream, with the reason). Anything else fails the page, which the runner retries;
one that keeps failing (a signal PostgreSQL cannot store) is parked by the runner once the page
is split down to it, unless PostgreSQL is merely away (ADR 0007).

A page is recorded in parts, one after the other in log order, and each part is read while the
one before it is being written, so that PostgreSQL's share of recording a part and ours of
reading the next overlap instead of taking turns.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from domain.customer.aggregate import CustomerWasMerged
from domain.shared.errors import DomainError
from domain.signals.aggregate import SignalReport
from domain.signals.intake import RECEIVED_TOPIC

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from uuid import UUID

    from application.customer.ingest_signals import IngestSignals
    from domain.signals.document import SignalReader
    from ports.clock import Clock
    from ports.intake import SignalIntake
    from ports.projections import LoggedEvent

__all__ = ["AttributeSignals"]


class AttributeSignals:
    """A projection of received signals into customers' histories (it owns no tables)."""

    name = "signal_attribution"
    topics = frozenset({RECEIVED_TOPIC})
    tables: tuple[str, ...] = ()
    page_size = 4000
    part_size = 1000  # signals recorded in one transaction
    _read_between_yields = 100  # signals read before the part being written may go on

    def __init__(
        self,
        ingest: IngestSignals,
        reader: SignalReader,
        intake: SignalIntake,
        clock: Clock,
        on_refused: Callable[[UUID, str], None] | None = None,
    ) -> None:
        self.ingest = ingest
        self.reader = reader
        self.intake = intake
        self.clock = clock
        self.on_refused = on_refused

    def writing_to(self, suffix: str) -> AttributeSignals:
        return self

    async def apply(self, conn: object, events: Sequence[LoggedEvent]) -> None:
        writing: asyncio.Task[None] | None = None
        try:
            for start in range(0, len(events), self.part_size):
                reports = await self._read(events[start : start + self.part_size])
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._record_unrefused(reports))
                await asyncio.sleep(0)  # its first statement goes out before the next read
            if writing is not None:
                await writing
        finally:
            # A part still being written when reading failed: not left behind, nor its error.
            if writing is not None:
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing

    async def _read(self, events: Sequence[LoggedEvent]) -> list[tuple[UUID, SignalReport]]:
        reports: list[tuple[UUID, SignalReport]] = []
        for place, event in enumerate(events, 1):
            parsed = self.reader.parse(event.payload)
            if isinstance(parsed, SignalReport):
                reports.append((event.stream_id, parsed))
            else:
                # Valid when received, refused now: only a change of validation between
                # releases does that. The received signal stays in the log.
                await self.refuse(event.stream_id, parsed)
            if place % self._read_between_yields == 0:
                await asyncio.sleep(0)
        return reports

    async def _record_unrefused(self, reports: Sequence[tuple[UUID, SignalReport]]) -> None:
        if reports:
            # A page applied again after a crash: what was refused stays refused, even if its
            # customer would take it now.
            refused = await self.intake.refused([intake_id for intake_id, _ in reports])
            await self._record([r for r in reports if r[0] not in refused])

    async def _record(self, reports: Sequence[tuple[UUID, SignalReport]]) -> None:
        """Records the signals in log order, splitting the batch around any that is refused."""
        try:
            await self.ingest([report for _, report in reports])
        except CustomerWasMerged:
            raise  # a race with a merge, not a refusal: the page goes again
        except DomainError as error:
            if len(reports) == 1:
                await self.refuse(reports[0][0], f"{type(error).__name__}: {error}")
                return
            half = len(reports) // 2
            await self._record(reports[:half])
            await self._record(reports[half:])

    async def refuse(self, intake_id: UUID, reason: str) -> None:
        await self.intake.refuse(intake_id, reason, self.clock.now())
        if self.on_refused is not None:
            self.on_refused(intake_id, reason)
