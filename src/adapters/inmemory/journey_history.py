"""The in-memory log read back for campaign dry runs."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from domain.segments.aggregate import Membership
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator
    from datetime import datetime
    from uuid import UUID

    from adapters.inmemory.event_store import InMemoryEventStore, RecordedEvent
    from ports.journey_history import Happening

__all__ = ["InMemoryJourneyHistory"]

_HAPPENINGS = (Signal.Recorded, Membership.Entered, Membership.Exited)


class InMemoryJourneyHistory:
    """Hands out copies of the stored signals and segment entries; never writes."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    def _happenings(self, until: datetime) -> Iterator[tuple[RecordedEvent, Happening]]:
        for recorded in self.store.log:
            if isinstance(recorded.event, _HAPPENINGS) and recorded.recorded_at <= until:
                yield recorded, recorded.event

    async def entering(
        self,
        since: datetime,
        until: datetime,
        signal_types: Collection[str],
        segment_keys: Collection[str],
        max_customers: int,
    ) -> list[UUID]:
        met: dict[UUID, None] = {}
        for recorded, event in self._happenings(until):
            if recorded.recorded_at < since or len(met) >= max_customers:
                continue
            if (isinstance(event, Signal.Recorded) and event.signal_type in signal_types) or (
                isinstance(event, Membership.Entered) and event.segment_key in segment_keys
            ):
                met[event.customer_id] = None
        return list(met)

    async def lives(self, customers: Collection[UUID], until: datetime) -> list[Happening]:
        wanted = set(customers)
        return [
            copy.deepcopy(event)
            for _, event in self._happenings(until)
            if event.customer_id in wanted
        ]
