"""Records a batch of signals against the customers they are about, exactly once each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from application.conflicts import retry_on_conflict
from application.customer.resolution import Resolution
from domain.customer.signal_effects import apply_signal
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from domain.signals.aggregate import SignalReport
    from ports.clock import Clock
    from ports.ids import IdGenerator
    from ports.unit_of_work import UnitsOfWork

__all__ = ["IngestSignals", "SignalOutcome"]


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
