"""Signals reach their customers: received and committed at once, attributed from the log.

`AcceptSignals` commits what producers report, once each by their event id, and answers;
`AttributeSignals` follows the log in the projection worker and has `IngestSignals` put each
received signal on its customer (identities resolved, customers registered or merged, a
`Signal.Recorded` per signal), exactly once (ADR 0006).

Attribution is exactly once without sharing the runner's transaction: a page is recorded by
`IngestSignals` in one transaction of its own, and a page applied again after a crash finds its
signals recorded (their streams exist) and changes nothing.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from application.conflicts import retry_on_conflict
from application.customer.resolution import Resolution
from domain.customer.aggregate import CustomerWasMerged
from domain.customer.signal_effects import apply_signal
from domain.shared.errors import DomainError
from domain.signals.aggregate import Signal, SignalReport
from domain.signals.intake import RECEIVED_TOPIC, intake_id_for

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from uuid import UUID

    from domain.signals.document import ReceivedSignal, SignalReader
    from ports.clock import Clock
    from ports.ids import IdGenerator
    from ports.intake import Attribution, SignalIntake
    from ports.projections import LoggedEvent
    from ports.unit_of_work import UnitsOfWork

__all__ = ["AcceptSignals", "AttributeSignals", "IngestSignals", "SignalOutcome"]


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """What became of one signal of a batch."""

    status: Literal["recorded", "duplicate"]
    signal_id: UUID
    customer_id: UUID | None


class IngestSignals:
    """Commits a batch in one transaction; retried whole when a concurrent writer wins a race."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, ids: IdGenerator) -> None:
        self.uows = uows
        self.clock = clock
        self.ids = ids

    async def __call__(self, reports: Sequence[SignalReport]) -> list[SignalOutcome]:
        return await retry_on_conflict(lambda: self._attempt(reports))

    async def _attempt(self, reports: Sequence[SignalReport]) -> list[SignalOutcome]:
        at = self.clock.now()
        outcomes: list[SignalOutcome | None] = [None] * len(reports)
        async with self.uows() as uow:
            signals_of = uow.repository(Signal)
            already = await signals_of.existing({r.signal_id for r in reports})
            fresh: list[tuple[int, SignalReport]] = []
            seen: set[UUID] = set()
            for index, report in enumerate(reports):
                if report.signal_id in already or report.signal_id in seen:
                    outcomes[index] = SignalOutcome("duplicate", report.signal_id, None)
                else:
                    seen.add(report.signal_id)
                    fresh.append((index, report))

            resolution = Resolution(uow, self.ids, at)
            await resolution.prepare(claim for _, r in fresh for claim in r.identities)
            known = [
                None if r.needs_customer else resolution.known_owner(r.identities) for _, r in fresh
            ]
            await resolution.load(
                owner
                for (_, r), owner_known in zip(fresh, known, strict=True)
                if owner_known is None
                for owner in resolution.owners_of(r.identities)
            )
            signals: list[Signal.Recorded] = []
            # Who is known holds until a signal registers, links or merges a customer.
            changed = False
            for (index, report), owner_known in zip(fresh, known, strict=True):
                owner = owner_known
                if changed and not report.needs_customer:
                    owner = resolution.known_owner(report.identities)
                if owner is None:
                    changed = True
                    customer = await resolution.customer_for(
                        report.identities,
                        reason=f"signal {report.event_id}",
                        profile=report.profile,
                        attributes=report.attributes,
                    )
                    owner = customer.id
                    if report.changes_customer:
                        apply_signal(
                            customer,
                            report.type,
                            report.properties,
                            report.occurred_at,
                            report.source,
                            at,
                        )
                signals.append(Signal.recorded(report, owner, at))
                outcomes[index] = SignalOutcome("recorded", report.signal_id, owner)
            await resolution.write()
            signals_of.record(*signals)
        return [outcome for outcome in outcomes if outcome is not None]


class AcceptSignals:
    """Answers as soon as the signals are durable; `attributed` waits for their customers.

    Signals that change their customer's consent (a consent signal, an inbound STOP or START:
    an opt-out takes effect at once) are attributed before the answer too, and before they are
    received:
    attribution, which wakes as soon as a received signal commits, then always finds them
    recorded and skips them, rather than racing this to record them (the loser's whole page
    goes again, and a customer it loaded meanwhile is a stale copy in its process). One that
    its customer refuses, or that was refused already, is left to attribution, which says why.
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
        if any(s.at_once for s in signals):
            await self._at_once(signals)
        return await self.intake.receive(signals, self.clock.now())

    async def _at_once(self, signals: Sequence[ReceivedSignal]) -> None:
        """Records the signals that act on their customer; one received before is recorded
        already (a duplicate) or was refused, which a producer's retry does not change."""
        acting = {intake_id_for(s.event_id): s.at_once for s in signals if s.at_once}
        refused = await self.intake.refused(acting.keys())
        at_once = [report for intake_id, report in acting.items() if intake_id not in refused]
        if not at_once:
            return
        with contextlib.suppress(DomainError):
            # Attribution takes them from the log: it splits the batch around a refused one
            # and records why, and takes a page again after a race with a merge.
            await self.ingest(at_once)

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
