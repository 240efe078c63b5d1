"""The unit of work in memory: repositories per aggregate type and the side indexes, committed
all together or not at all."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from adapters.inmemory.event_store import declared_subject
from adapters.inmemory.side_indexes import (
    StagedApprovals,
    StagedDecisions,
    StagedDeferrals,
    StagedIdentities,
    StagedOutbox,
    StagedRequestKeys,
)
from adapters.inmemory.storage import InMemoryStorage
from domain.message.aggregate import Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection

    from eventsourcing.domain import CanMutateAggregate

__all__ = ["InMemoryRepository", "InMemoryUnitOfWork", "InMemoryUnitsOfWork"]

A = TypeVar("A", bound=Aggregate)


class InMemoryRepository(Generic[A]):
    """The aggregates of one type, read as last committed, written when the unit commits."""

    def __init__(self, kind: type[A], uow: InMemoryUnitOfWork) -> None:
        self.kind = kind
        self.uow = uow

    async def get(self, ids: Collection[UUID], *, cached: bool = True) -> dict[UUID, A]:
        """What this unit holds to save (so two changes in one unit build on each other), else
        as last committed (nothing is kept between units here: `cached` changes nothing)."""
        await self.uow.queue_for(ids)
        held = {i: self.uow.added[i] for i in ids if i in self.uow.added}
        loaded = self.uow.storage.events.load([i for i in ids if i not in held])
        found = {i: a for i, a in loaded.items() if isinstance(a, self.kind)}
        return found | {i: a for i, a in held.items() if isinstance(a, self.kind)}

    async def existing(self, ids: Collection[UUID]) -> set[UUID]:
        return self.uow.storage.events.existing(ids)

    async def oldest_first(self, ids: Collection[UUID]) -> list[UUID]:
        return self.uow.storage.events.oldest_first(ids)

    def add(self, *aggregates: A) -> None:
        for aggregate in aggregates:
            if not isinstance(aggregate, self.kind):
                raise TypeError(f"{aggregate!r} is no {self.kind.__name__}")
            self.uow.added[aggregate.id] = aggregate

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        self.uow.recorded.extend(events)


class InMemoryUnitOfWork:
    """One commit's reads and writes; nothing it writes is seen by others before it commits."""

    def __init__(
        self, storage: InMemoryStorage, locks: weakref.WeakValueDictionary[UUID, asyncio.Lock]
    ) -> None:
        self.storage = storage
        self.locks = locks
        self.held: list[asyncio.Lock] = []
        self.added: dict[UUID, Aggregate] = {}
        self.recorded: list[CanMutateAggregate[UUID]] = []
        self.repositories: dict[type[Any], InMemoryRepository[Any]] = {}
        self.deferrals = StagedDeferrals(storage)
        self.outbox = StagedOutbox(storage, self.repository(Message).add)
        self.approvals = StagedApprovals(storage)
        self.identities = StagedIdentities(storage, self._erased)
        self.decisions = StagedDecisions(storage)
        self.requests = StagedRequestKeys(storage)

    def _erased(self, customer_ids: Collection[UUID]) -> None:
        """As PostgreSQL's erasure: what was to be sent to them later goes with it."""
        self.deferrals.forget_customers(customer_ids)
        self.outbox.forget_customers(customer_ids)

    def repository(self, kind: type[A]) -> InMemoryRepository[A]:
        found = self.repositories.get(kind)
        if found is None:
            found = self.repositories[kind] = InMemoryRepository(kind, self)
        return found

    async def queue_for(self, ids: Collection[UUID]) -> None:
        """As in PostgreSQL's adapter: the first read waits for other commands on the same ids
        in this process; later reads do not wait, so two units never wait on each other."""
        if self.held:
            return
        for stream_id in sorted(ids):
            lock = self.locks.get(stream_id)
            if lock is None:
                lock = self.locks[stream_id] = asyncio.Lock()
            await lock.acquire()
            self.held.append(lock)

    def commit(self) -> None:
        """Checks every write against what others committed, then applies all of them."""
        events = self.storage.events
        pending = [
            (event, declared_subject(aggregate))
            for aggregate in self.added.values()
            for event in aggregate.pending_events
        ]
        pending += [(event, declared_subject(event)) for event in self.recorded]
        events.check([event for event, _ in pending])
        applies = [
            index.prepare_commit()
            for index in (
                self.identities,
                self.decisions,
                self.requests,
                self.deferrals,
                self.outbox,
                self.approvals,
            )
        ]
        applies.append(self.storage.roster.prepare(self.added.values()))
        for aggregate in self.added.values():
            aggregate.collect_events()
        events.append(pending)
        for apply in applies:
            apply()

    def end(self) -> None:
        self.deferrals.release()
        while self.held:
            self.held.pop().release()


class InMemoryUnitsOfWork:
    """Opens units of work on one storage; two of these on one storage are two processes."""

    def __init__(self, storage: InMemoryStorage | None = None) -> None:
        self.storage = storage or InMemoryStorage()
        self.locks: weakref.WeakValueDictionary[UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[InMemoryUnitOfWork]:
        uow = InMemoryUnitOfWork(self.storage, self.locks)
        try:
            yield uow
            uow.commit()
        finally:
            uow.end()
