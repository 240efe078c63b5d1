"""The customer directory and signal counts, read straight from the in-memory log."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, cast
from uuid import UUID

from adapters.cursors import cursor_of, uuid_of_cursor
from adapters.inmemory.segments import members_of
from domain.customer.aggregate import Customer
from domain.customer.profile import PROFILE_FIELDS
from domain.signals.aggregate import Signal
from ports.directory import ActivityCount, DirectoryEntry, DirectoryPage

if TYPE_CHECKING:
    from datetime import datetime

    from adapters.inmemory.storage import InMemoryStorage
    from ports.directory import DirectorySearch

__all__ = ["InMemoryDirectory"]


class InMemoryDirectory:
    """Every read is up to date: the in-memory read models are never behind the log."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    def _entry(self, customer: Customer) -> DirectoryEntry:
        stream = self.storage.events.stream(customer.id)
        return DirectoryEntry(
            customer.id,
            sorted(f"{i.type}:{i.value}" for i in customer.identities),
            customer.profile.as_dict(),
            dict(customer.attributes),
            stream[-1].recorded_at,
        )

    async def search(
        self, criteria: DirectorySearch, *, after: str | None, limit: int
    ) -> DirectoryPage:
        start = uuid_of_cursor(after)
        events = self.storage.events
        customers = events.load(events.started_by(Customer)).values()
        members = (
            members_of(self.storage, criteria.segment_id)
            if criteria.segment_id is not None
            else None
        )
        found = []
        for customer in sorted(cast("list[Customer]", list(customers)), key=lambda c: c.id):
            entry = self._entry(customer)
            if customer.is_merged or (start is not None and customer.id <= start):
                continue
            if criteria.identity is not None and criteria.identity not in entry.identities:
                continue
            if criteria.identity_type is not None and not any(
                i.startswith(criteria.identity_type + ":") for i in entry.identities
            ):
                continue
            if any(
                (entry.profile.get(name) != str(value))
                if name in PROFILE_FIELDS
                else entry.attributes.get(name, _MISSING) != value
                for name, value in criteria.attributes.items()
            ):
                continue
            if members is not None and customer.id not in members:
                continue
            found.append(entry)
        page = found[:limit]
        more = len(found) > limit
        return DirectoryPage(page, cursor_of(page[-1].customer_id) if more else None)

    async def activity(self, customer_id: UUID, since: datetime) -> list[ActivityCount]:
        """Counted from the whole hour `since` falls in, as the hourly counters do."""
        hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        merged = {m for m, survivor in self.storage.merges.items() if survivor == customer_id}
        counts: dict[str, tuple[int, datetime]] = {}
        for recorded in self.storage.events.read():
            signal = recorded.event
            if not isinstance(signal, Signal.Recorded) or (
                signal.customer_id != customer_id and signal.customer_id not in merged
            ):
                continue
            count, last_at = counts.get(signal.signal_type, (0, signal.occurred_at))
            counts[signal.signal_type] = (
                count + (signal.occurred_at >= hour),
                max(last_at, signal.occurred_at),
            )
        return [ActivityCount(kind, n, last) for kind, (n, last) in sorted(counts.items())]


_MISSING = object()
