"""Attributes received signals to customers, following the log: the asynchronous half of ingest.

Exactly once without sharing the runner's transaction: a page is recorded by `IngestSignals`
in one transaction of its own, and a page applied again after a crash finds its signals
recorded (their streams exist) and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.signals.aggregate import SignalReport
from domain.signals.intake import RECEIVED_TOPIC

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from uuid import UUID

    from application.customer.ingest_signals import IngestSignals
    from ports.projections import LoggedEvent

__all__ = ["AttributeSignals"]


class AttributeSignals:
    """A projection of received signals into customers' histories (it owns no tables)."""

    name = "signal_attribution"
    topics = frozenset({RECEIVED_TOPIC})
    tables: tuple[str, ...] = ()
    page_size = 1000

    def __init__(
        self,
        ingest: IngestSignals,
        parse: Callable[[bytes], SignalReport | str],
        refused: Callable[[UUID, str], None],
    ) -> None:
        self.ingest = ingest
        self.parse = parse
        self.refused = refused

    def writing_to(self, suffix: str) -> AttributeSignals:
        return self

    async def apply(self, conn: object, events: Sequence[LoggedEvent]) -> None:
        reports: list[SignalReport] = []
        for event in events:
            parsed = self.parse(event.payload)
            if isinstance(parsed, SignalReport):
                reports.append(parsed)
            else:
                # Valid when received, refused now: only a change of validation between
                # releases does that. The received signal stays in the log.
                self.refused(event.stream_id, parsed)
        if reports:
            await self.ingest(reports)
