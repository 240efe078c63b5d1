"""The in-memory log as `chorus audit verify` reads it."""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING

from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.policy.rule_book import RULE_BOOK_ID
from domain.shared.topics import events_of
from ports.verification import LogSize

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryVerifiedLog"]

_CUSTOMER_EVENTS = tuple(events_of(Customer).values())


class _Snapshot:
    def __init__(self, events: list[CanMutateAggregate[UUID]]) -> None:
        self.events = events

    def _customers(self) -> dict[UUID, list[CanMutateAggregate[UUID]]]:
        streams: dict[UUID, list[CanMutateAggregate[UUID]]] = {}
        for event in self.events:
            if isinstance(event, _CUSTOMER_EVENTS):
                streams.setdefault(event.originator_id, []).append(event)
        return streams

    async def size(self) -> LogSize:
        customers = sum(len(stream) for stream in self._customers().values())
        messages = sum(isinstance(event, Message.Queued) for event in self.events)
        return LogSize(len(self.events), customers, messages)

    async def rule_book(self) -> list[CanMutateAggregate[UUID]]:
        return [event for event in self.events if event.originator_id == RULE_BOOK_ID]

    async def customer_streams(self) -> AsyncIterator[list[CanMutateAggregate[UUID]]]:
        for _, stream in sorted(self._customers().items()):
            yield sorted(stream, key=lambda event: event.originator_version)

    async def queued_messages(self) -> AsyncIterator[CanMutateAggregate[UUID]]:
        for event in self.events:
            if isinstance(event, Message.Queued):
                yield event


class InMemoryVerifiedLog:
    """Reads a copy of the storage's log taken when the snapshot begins."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_Snapshot]:
        events = [
            copy.deepcopy(recorded.event)
            for recorded in self.storage.events.log
            if recorded.event is not None
        ]
        yield _Snapshot(events)
