"""The aggregates of one type as event streams, enlisted in a PostgreSQL unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

from eventsourcing.domain import Aggregate

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["A", "PostgresRepository"]

A = TypeVar("A", bound=Aggregate)

_EXISTING = "SELECT stream_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1"
_OLDEST_FIRST = """
SELECT stream_id FROM events WHERE stream_id = ANY($1::uuid[]) AND version = 1 ORDER BY position
"""


class PostgresRepository(Generic[A]):
    """Loads from the aggregate cache when the type is cached, else from the event store."""

    def __init__(self, uow: PostgresUnitOfWork, kind: type[A]) -> None:
        self.uow = uow
        self.kind = kind
        self.cached = issubclass(kind, uow.cached)

    async def get(self, ids: Collection[UUID], *, cached: bool = True) -> dict[UUID, A]:
        """What this unit holds to save (so two changes in one unit build on each other), else
        as last committed: from the aggregate cache unless `cached` is False."""
        uow = self.uow
        await uow.queue_for(ids)
        found: dict[UUID, A] = {}
        missing: list[UUID] = []
        for aggregate_id in ids:
            adding = uow.to_save.get(aggregate_id)
            if isinstance(adding, self.kind):
                found[aggregate_id] = adding
                continue
            # Not cached: read below; the commit gives the cache the newer copy.
            held = uow.cache.take(aggregate_id) if self.cached and cached else None
            if isinstance(held, self.kind):
                found[aggregate_id] = held
            else:
                missing.append(aggregate_id)
        if missing:
            loaded = await uow.events.load(uow.reader, missing)
            found.update((k, v) for k, v in loaded.items() if isinstance(v, self.kind))
        uow.lent.update(found)
        return found

    async def existing(self, ids: Collection[UUID]) -> set[UUID]:
        rows = await self.uow.reader.fetch(_EXISTING, list(ids))
        return {row[0] for row in rows}

    async def oldest_first(self, ids: Collection[UUID]) -> list[UUID]:
        rows = await self.uow.reader.fetch(_OLDEST_FIRST, list(ids))
        return [row[0] for row in rows]

    def add(self, *aggregates: A) -> None:
        for aggregate in aggregates:
            self.uow.to_save[aggregate.id] = aggregate

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        self.uow.to_record.extend(events)
