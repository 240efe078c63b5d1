"""The customer store of today's use cases, over the in-memory unit of work."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from eventsourcing.domain import Aggregate

from adapters.inmemory.customers import InMemoryCustomers
from adapters.inmemory.unit_of_work import InMemoryUnitsOfWork
from domain.customer.aggregate import Customer
from domain.signals.aggregate import Signal
from ports.unit_of_work import EarlierRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Mapping
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from adapters.inmemory.storage import InMemoryStorage
    from adapters.inmemory.unit_of_work import InMemoryUnitOfWork
    from domain.customer.identities import Identity
    from domain.message.aggregate import Message
    from domain.policy.decision import SendRequest
    from ports.delivery import Delivery, FallbackPlan
    from ports.unit_of_work import DueMessage

__all__ = ["InMemoryCustomerStore", "InMemoryCustomerTransaction"]


class InMemoryCustomerTransaction:
    """Each method of the customer transaction is one of the unit of work's."""

    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self.uow = uow

    async def existing_signals(self, signal_ids: Collection[UUID]) -> set[UUID]:
        return await self.uow.repository(Signal).existing(signal_ids)

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        return await self.uow.identities.resolve(identities)

    async def get(self, customer_ids: Collection[UUID]) -> dict[UUID, Customer]:
        return await self.uow.repository(Customer).get(customer_ids)

    async def oldest_first(self, customer_ids: Collection[UUID]) -> list[UUID]:
        return await self.uow.repository(Customer).oldest_first(customer_ids)

    async def claim_identities(self, owners: Mapping[Identity, UUID]) -> None:
        await self.uow.identities.claim(owners)

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        await self.uow.identities.record_merge(merged_id, survivor_id)

    def save(self, *aggregates: Aggregate) -> None:
        self.uow.repository(Aggregate).add(*aggregates)

    async def defer(
        self,
        message_id: UUID,
        customer_id: UUID,
        due_at: datetime,
        request: SendRequest,
        origin: str,
        delivery: Delivery | None = None,
    ) -> None:
        self.uow.deferrals.defer(message_id, customer_id, due_at, request, origin, delivery)

    def enqueue(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        self.uow.outbox.put(message, fallback)

    async def forget_deferred(self, message_id: UUID) -> None:
        await self.uow.deferrals.forget(message_id)

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        return await self.uow.deferrals.claim_due(now, limit)

    async def earlier_request(self, idempotency_key: str) -> EarlierRequest | None:
        return await self.uow.requests.earlier(idempotency_key)

    async def index_decision(
        self,
        decision_id: UUID,
        message_id: UUID,
        customer_id: UUID,
        stream_version: int,
        idempotency_key: str | None,
        fingerprint: bytes | None = None,
    ) -> None:
        self.uow.decisions.add(decision_id, message_id, customer_id, stream_version)
        if idempotency_key is not None:
            self.uow.requests.add(
                idempotency_key, EarlierRequest(message_id, customer_id, decision_id, fingerprint)
            )

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        self.uow.repository(Aggregate).record(*events)


class InMemoryCustomerStore(InMemoryCustomers):
    """Customers by id and identity; writes go through `transaction()`."""

    def __init__(self, storage: InMemoryStorage, uows: InMemoryUnitsOfWork | None = None) -> None:
        super().__init__(storage)
        self.uows = uows or InMemoryUnitsOfWork(storage)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InMemoryCustomerTransaction]:
        async with self.uows() as uow:
            yield InMemoryCustomerTransaction(uow)
