"""Received signals in the in-memory log, once each by the producer's event id."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from domain.signals.aggregate import signal_id_for
from domain.signals.intake import RECEIVED_TOPIC, REFUSED_TOPIC, intake_id_for
from ports.intake import Attribution

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from domain.signals.document import ReceivedSignal

__all__ = ["InMemorySignalIntake"]


class InMemorySignalIntake:
    """Version 1 of a signal's intake stream is its receipt, version 2 its refusal."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def receive(self, signals: Sequence[ReceivedSignal], at: datetime) -> list[bool]:
        events = self.storage.events
        return [
            events.append_raw(intake_id_for(s.event_id), 1, RECEIVED_TOPIC, at, s.payload)
            for s in signals
        ]

    async def refuse(self, intake_id: UUID, reason: str, at: datetime) -> None:
        payload = msgspec.json.encode({"reason": reason})
        self.storage.events.append_raw(intake_id, 2, REFUSED_TOPIC, at, payload)

    async def refused(self, intake_ids: Collection[UUID]) -> set[UUID]:
        events = self.storage.events
        return {intake_id for intake_id in intake_ids if events.version_of(intake_id) >= 2}

    async def attributed(self, event_ids: Collection[str]) -> dict[str, Attribution]:
        events = self.storage.events
        found: dict[str, Attribution] = {}
        for event_id in event_ids:
            recorded = events.stream(signal_id_for(event_id))
            refused = events.stream(intake_id_for(event_id))[1:]
            if recorded:
                found[event_id] = Attribution(recorded[0].subject_id)
            elif refused:
                found[event_id] = Attribution(refused=refused[0].data["reason"])
        return found
