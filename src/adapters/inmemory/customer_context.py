"""A customer's last signals and decisions, read straight from the in-memory log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.signals.aggregate import Signal
from ports.customer_context import RecentSignal

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

    from adapters.inmemory.event_store import RecordedEvent
    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryContextReads"]


class InMemoryContextReads:
    """Every read is up to date: the in-memory read models are never behind the log."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def last_signals(
        self, customer_id: UUID, types: Collection[str] | None, limit: int
    ) -> list[RecentSignal]:
        merged = {m for m, survivor in self.storage.merges.items() if survivor == customer_id}
        found = [
            RecentSignal(signal.originator_id, signal.signal_type, signal.occurred_at)
            for recorded in self.storage.events.read()
            if isinstance(signal := recorded.event, Signal.Recorded)
            and (signal.customer_id == customer_id or signal.customer_id in merged)
            and (types is None or signal.signal_type in types)
        ]
        found.sort(key=lambda s: (s.occurred_at, s.signal_id), reverse=True)
        return found[:limit]

    async def last_decisions(
        self, customer_ids: Collection[UUID], topics: Collection[str], limit: int
    ) -> list[RecordedEvent]:
        found = [
            recorded
            for customer_id in customer_ids
            for recorded in self.storage.events.stream(customer_id)
            if recorded.topic in topics
        ]
        found.sort(key=lambda e: e.position, reverse=True)
        return found[:limit]
