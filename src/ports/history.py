"""Recorded history for replays: streams as their domain events, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

__all__ = ["History"]


class History(Protocol):
    """Reads the event store for audits and simulations; never writes."""

    async def customers_decided_between(
        self, since: datetime, until: datetime, limit: int
    ) -> list[UUID]:
        """Customers with at least one recorded decision from `since` to `until`, both included."""
        ...

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        """Every event of one stream, oldest first."""
        ...
