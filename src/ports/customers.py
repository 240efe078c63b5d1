"""Where customers, their identities and the signals about them are kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime

    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from domain.customer.aggregate import Customer
    from domain.customer.identities import Identity
    from domain.message.aggregate import Message
    from domain.policy.decision import SendRequest
    from ports.delivery import Delivery, FallbackPlan

__all__ = [
    "ConcurrencyConflict",
    "CustomerStore",
    "CustomerTransaction",
    "DueMessage",
    "EarlierRequest",
    "StoredEvent",
    "TimelinePage",
]


@dataclass(frozen=True, slots=True)
class DueMessage:
    """A deferred message whose time has come."""

    message_id: UUID
    customer_id: UUID
    request: SendRequest
    origin: str
    delivery: Delivery | None = None


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    message_id: UUID
    customer_id: UUID
    decision_id: UUID
    fingerprint: bytes | None = None


class ConcurrencyConflict(Exception):
    """Someone else wrote first; load again and retry the command."""


class CustomerTransaction(Protocol):
    """Reads and writes that commit together, or not at all."""

    async def existing_signals(self, signal_ids: Collection[UUID]) -> set[UUID]:
        """Which of these signals were already recorded."""
        ...

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        """The customer each known identity belongs to (merged customers resolve to survivors)."""
        ...

    async def get(self, customer_ids: Collection[UUID]) -> dict[UUID, Customer]:
        """The customers under these ids, as last committed."""
        ...

    async def oldest_first(self, customer_ids: Collection[UUID]) -> list[UUID]:
        """These committed customers, by the log position of their creation."""
        ...

    async def claim_identities(self, owners: Mapping[Identity, UUID]) -> None:
        """Makes each identity resolve to its customer; raises ConcurrencyConflict if taken."""
        ...

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        """The merged customer's identities and id now resolve to the survivor."""
        ...

    def save(self, *aggregates: Aggregate) -> None:
        """Appends the aggregates' pending events when the transaction commits."""
        ...

    async def defer(
        self,
        message_id: UUID,
        customer_id: UUID,
        due_at: datetime,
        request: SendRequest,
        origin: str,
        delivery: Delivery | None = None,
    ) -> None:
        """Keeps a deferred message until `due_at` (replacing an earlier due time)."""
        ...

    def enqueue(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        """Saves a new allowed message and puts it in the outbox (and its fallback plan in
        wait), in the same commit."""
        ...

    async def forget_deferred(self, message_id: UUID) -> None:
        """The message was decided for good: no longer deferred."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        """Deferred messages due by `now`, locked for this transaction and skipped by others."""
        ...

    async def earlier_request(self, idempotency_key: str) -> EarlierRequest | None:
        """The message and decision a send request with this key already made."""
        ...

    async def index_decision(
        self,
        decision_id: UUID,
        message_id: UUID,
        customer_id: UUID,
        stream_version: int,
        idempotency_key: str | None,
        fingerprint: bytes | None = None,
    ) -> None:
        """Makes the decision findable by id (and the request by its idempotency key, with a
        fingerprint of what was asked so a reused key can be told apart)."""
        ...

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        """Appends the creation events of one-event aggregates, built without the aggregate."""
        ...


class CustomerStore(Protocol):
    """Customers by id and identity, as last committed."""

    def transaction(self) -> AbstractAsyncContextManager[CustomerTransaction]: ...

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
