"""Triggers as their in-memory streams say; their firings from the Fired facts in the log."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.triggers.aggregate import Firing, Trigger, check_trigger_key, trigger_id
from domain.triggers.definition import on_document
from ports.triggers import FiringPage, FiringRecord, InvalidFiringCursor, TriggerSummary

if TYPE_CHECKING:
    from adapters.inmemory.event_store import RecordedEvent
    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryTriggers"]

_FIRED = get_topic(Firing.Fired)


class InMemoryTriggers:
    """Triggers by key, and firings by trigger (TriggerReadModel), read from the log."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    def _load(self, key: str) -> Trigger | None:
        stream = trigger_id(check_trigger_key(key))
        found = self.storage.events.load([stream]).get(stream)
        return cast("Trigger", found) if found is not None else None

    @property
    def keys(self) -> list[str]:
        """The keys ever defined, sorted."""
        streams = self.storage.events.started_by(Trigger)
        return sorted(
            cast("Trigger", found).key for found in self.storage.events.load(streams).values()
        )

    async def summaries(self) -> list[TriggerSummary]:
        found = [await self.summary(key) for key in self.keys]
        return [summary for summary in found if summary is not None and not summary.deleted]

    async def summary(self, key: str) -> TriggerSummary | None:
        trigger = self._load(key) if key in self.keys else None
        if trigger is None:
            return None
        return TriggerSummary(
            trigger.key,
            trigger.id,
            trigger.name,
            trigger.description,
            trigger.number,
            on_document(trigger.on),
            trigger.changed_at,
            trigger.deleted,
        )

    async def firings(self, trigger_id: UUID, *, after: str | None, limit: int) -> FiringPage:
        """Newest first; the cursor is the log position of the last firing of the page."""
        before = _position_of(after)
        fired = [
            event
            for event in reversed(list(self.storage.events.read({_FIRED})))
            if UUID(event.data["trigger_id"]) == trigger_id
            and (before is None or event.position < before)
        ]
        page = fired[:limit]
        more = len(fired) > limit
        return FiringPage([_record(e) for e in page], str(page[-1].position) if more else None)


def _position_of(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not cursor.isdigit():
        raise InvalidFiringCursor(f"{cursor!r} is not a cursor from a previous page")
    return int(cursor)


def _record(event: RecordedEvent) -> FiringRecord:
    data = event.data
    return FiringRecord(
        firing_id=event.stream_id,
        trigger_version=data["trigger_version"],
        customer_id=UUID(data["customer_id"]),
        source_kind=data["source_kind"],
        source_stream_id=UUID(data["source_stream_id"]),
        source_version=data["source_version"],
        source_occurred_at=datetime.fromisoformat(data["source_occurred_at"]),
        source_recorded_at=datetime.fromisoformat(data["source_recorded_at"]),
        fired_at=event.recorded_at,
        signal_type=data["signal_type"],
        signal_event_id=data["signal_event_id"],
        segment_key=data["segment_key"],
        exit_reason=data["exit_reason"],
    )
