"""What is recorded about customers, as last committed: who they are, and their timelines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.customer.aggregate import Customer
    from domain.customer.identities import Identity

__all__ = ["CustomerRecords", "StoredEvent", "TimelinePage"]


class CustomerRecords(Protocol):
    """Customers by id and identity, their timelines and decisions, as last committed."""

    async def survivor(self, customer_id: UUID) -> UUID | None:
        """The id a customer id resolves to now: itself, its survivor, or None if unknown."""
        ...

    async def get(self, customer_id: UUID) -> Customer | None: ...

    async def find(self, identity: Identity) -> UUID | None: ...

    async def timeline(
        self, customer_id: UUID, *, limit: int, before: int | None
    ) -> TimelinePage: ...

    async def decision(self, decision_id: UUID) -> StoredEvent | None:
        """The recorded event of a decision, as stored."""
        ...


class StoredEvent(Protocol):
    """An event as recorded, with its place in the global log."""

    @property
    def position(self) -> int: ...

    @property
    def stream_id(self) -> UUID: ...

    @property
    def version(self) -> int: ...

    @property
    def topic(self) -> str: ...

    @property
    def recorded_at(self) -> datetime: ...

    @property
    def data(self) -> Mapping[str, object]: ...


class TimelinePage(Protocol):
    """Newest first; `next_before` continues where this page stops."""

    @property
    def events(self) -> Sequence[StoredEvent]: ...

    @property
    def next_before(self) -> int | None: ...
