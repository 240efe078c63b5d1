"""Aggregates kept in memory between commands, lent to one transaction at a time."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import Aggregate

__all__ = ["AggregateCache"]


class AggregateCache:
    """An LRU of committed aggregates.

    A transaction takes an aggregate out and gives it back only after it committed, so two
    transactions never share one object; the loser of a race reloads from the store, and the
    stream's unique (id, version) key turns a stale copy into a conflict, never a lost write.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def take(self, aggregate_id: UUID) -> Aggregate | None:
        return self._items.pop(aggregate_id, None)

    def give_back(self, aggregate: Aggregate) -> None:
        if aggregate.pending_events:
            return
        held = self._items.get(aggregate.id)
        if held is not None and held.version >= aggregate.version:
            return
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
