"""The in-memory log read back for replays."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from domain.customer.aggregate import Customer

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryHistory"]


class InMemoryHistory:
    """Hands out copies of the stored domain events; never writes."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def customers_decided_between(
        self, since: datetime, until: datetime, limit: int
    ) -> list[UUID]:
        decided: dict[UUID, None] = {}
        for recorded in self.storage.events.read():
            if (
                isinstance(recorded.event, Customer.MessageDecided)
                and since <= recorded.recorded_at <= until
            ):
                decided[recorded.stream_id] = None
        return list(decided)[:limit]

    async def stream(self, stream_id: UUID) -> list[CanMutateAggregate[UUID]]:
        return [
            copy.deepcopy(recorded.event)
            for recorded in self.storage.events.stream(stream_id)
            if recorded.event is not None
        ]
