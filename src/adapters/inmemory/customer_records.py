"""Customers read as last committed: by id following merges, by identity, and their timelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.customer.aggregate import Customer

if TYPE_CHECKING:
    from uuid import UUID

    from adapters.inmemory.event_store import RecordedEvent
    from adapters.inmemory.storage import InMemoryStorage
    from domain.customer.identities import Identity

__all__ = ["InMemoryCustomerRecords", "Timeline"]


@dataclass(frozen=True, slots=True)
class Timeline:
    events: list[RecordedEvent]
    next_before: int | None


class InMemoryCustomerRecords:
    """Customers as last committed, on the same storage as the units of work."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def survivor(self, customer_id: UUID) -> UUID | None:
        merged_into = self.storage.merges.get(customer_id)
        if merged_into is not None:
            return merged_into
        stream = self.storage.events.stream(customer_id)
        return customer_id if stream and stream[0].subject_id == customer_id else None

    async def get(self, customer_id: UUID) -> Customer | None:
        found = self.storage.events.load([customer_id]).get(customer_id)
        return found if isinstance(found, Customer) else None

    async def find(self, identity: Identity) -> UUID | None:
        return self.storage.identities.get(identity)

    async def timeline(self, customer_id: UUID, *, limit: int, before: int | None) -> Timeline:
        """Newest first: the customer's events and those about it, its merged customers' too."""
        subjects = {customer_id} | {
            merged for merged, survivor in self.storage.merges.items() if survivor == customer_id
        }
        about = [
            e
            for e in reversed(self.storage.events.log)
            if e.subject_id in subjects and (before is None or e.position < before)
        ]
        page = about[:limit]
        return Timeline(page, page[-1].position if len(about) > limit and page else None)

    async def decision(self, decision_id: UUID) -> RecordedEvent | None:
        row = self.storage.decisions.get(decision_id)
        if row is None:
            return None
        stream = self.storage.events.stream(row.customer_id)
        return stream[row.stream_version - 1] if len(stream) >= row.stream_version else None
