"""One commit for every aggregate: repositories and side indexes enlisted in a unit of work.

A handler opens a unit of work, loads aggregates from their repositories, calls them, and
leaves: what it added is appended when the unit of work closes without an error, together
with every side index it touched, in one transaction; an error rolls everything back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar
from uuid import UUID

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from contextlib import AbstractAsyncContextManager
    from datetime import datetime

    from eventsourcing.domain import Aggregate, CanMutateAggregate

    from domain.customer.identities import Identity
    from domain.message.aggregate import Message
    from domain.policy.decision import SendRequest
    from domain.policy.vocabulary import Channel
    from ports.approvals import Approvals
    from ports.delivery import Delivery, DueFallback, FallbackPlan

__all__ = [
    "ConcurrencyConflict",
    "DecisionIndex",
    "Deferrals",
    "DueMessage",
    "EarlierRequest",
    "IdentityIndex",
    "Leased",
    "Outbox",
    "Repository",
    "RequestKeys",
    "UnitOfWork",
    "UnitsOfWork",
]

A = TypeVar("A", bound="Aggregate")


class ConcurrencyConflict(Exception):
    """Someone else wrote first; load again and retry the command."""


class Repository(Protocol[A]):
    """The aggregates of one type, by id, as event streams."""

    async def get(self, ids: Collection[UUID], *, cached: bool = True) -> dict[UUID, A]:
        """The aggregates under these ids, as last committed; commands on the same ids in
        this process wait their turn rather than race.

        `cached=False` reads them from the store even when this process keeps a copy: for
        aggregates another process writes just before this one does (a customer whose inbound
        message the API recorded), where the copy would be stale and the commit a conflict.
        """
        ...

    async def existing(self, ids: Collection[UUID]) -> set[UUID]:
        """Which of these streams were started already."""
        ...

    async def oldest_first(self, ids: Collection[UUID]) -> list[UUID]:
        """These committed streams, in the log order of their first event."""
        ...

    def add(self, *aggregates: A) -> None:
        """Appends the aggregates' pending events when the unit of work commits."""
        ...

    def record(self, *events: CanMutateAggregate[UUID]) -> None:
        """Appends the creation events of one-event aggregates, built without the aggregate."""
        ...


class IdentityIndex(Protocol):
    """Which customer each identity belongs to, and which customers were merged into whom."""

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        """The customer each known identity belongs to (merged customers resolve to survivors)."""
        ...

    async def claim(self, owners: Mapping[Identity, UUID]) -> None:
        """Makes each identity resolve to its customer; raises ConcurrencyConflict if taken."""
        ...

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        """The merged customer's identities and id now resolve to the survivor."""

    async def erase(
        self, customer_ids: Collection[UUID], identities: Collection[Identity], at: datetime
    ) -> None:
        """These customers' identities resolve to no one, their deferred messages and fallbacks are dropped,
        and the keys that sealed their personal values (and what was received about
        `identities`, theirs) are deleted, for good (ADR 0019)."""
        ...


@dataclass(frozen=True, slots=True)
class EarlierRequest:
    """What a send request with the same idempotency key made before."""

    message_id: UUID
    customer_id: UUID
    decision_id: UUID
    fingerprint: bytes | None = None


class DecisionIndex(Protocol):
    """Decisions findable by id: where each is recorded on its customer's stream."""

    def add(
        self, decision_id: UUID, message_id: UUID, customer_id: UUID, stream_version: int
    ) -> None: ...


class RequestKeys(Protocol):
    """Send requests by their idempotency key, with a fingerprint of what was asked."""

    async def earlier(self, idempotency_key: str) -> EarlierRequest | None:
        """The message and decision a request with this key already made."""
        ...

    async def earlier_all(self, idempotency_keys: Collection[str]) -> dict[str, EarlierRequest]:
        """`earlier` for many keys at once: those a request already used."""
        ...

    def add(self, idempotency_key: str, earlier: EarlierRequest) -> None:
        """Remembers the key; a racing twin fails the commit with ConcurrencyConflict."""
        ...


@dataclass(frozen=True, slots=True)
class DueMessage:
    """A deferred message whose time has come."""

    message_id: UUID
    customer_id: UUID
    request: SendRequest
    origin: str
    delivery: Delivery | None = None
    approval_id: UUID | None = None  # held for an operator: its hold expires now


class Deferrals(Protocol):
    """Deferred messages, waiting for their due time to be decided again."""

    def defer(
        self,
        message_id: UUID,
        customer_id: UUID,
        due_at: datetime,
        request: SendRequest,
        origin: str,
        delivery: Delivery | None = None,
        approval_id: UUID | None = None,
    ) -> None:
        """Keeps a deferred message until `due_at` (replacing an earlier due time); a held one
        (`approval_id`) until its hold expires."""
        ...

    async def forget(self, message_id: UUID) -> None:
        """The message was decided for good: no longer deferred."""
        ...

    async def withdraw(self, message_id: UUID) -> DueMessage | None:
        """Takes the message out if it is deferred, so it is never decided again (after the
        unit of work deciding it now, if any, has ended); None if it is not deferred."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        """Deferred messages due by `now`, most urgent first, held by this unit of work and
        skipped by others until it ends."""
        ...

    async def withdraw_customers(self, customer_ids: Collection[UUID]) -> list[DueMessage]:
        """Takes out every deferred (and held) message of these customers, in this commit, so
        none is ever decided again; the ones taken out."""
        ...


@dataclass(frozen=True, slots=True)
class Leased:
    """An outbox entry leased to this dispatcher."""

    message_id: UUID
    rounds: int  # earlier dispatch rounds that ended in a retry
    # The W3C `traceparent` of the span that queued it, opaque here: the dispatcher's span
    # continues that trace (ADR 0020).
    trace_context: str | None = None


class Outbox(Protocol):
    """Allowed messages waiting for a dispatcher, with the fallback each may need.

    A dispatcher leases entries in one short unit of work, calls providers outside any, and
    records each round in another: the message added to its repository, its entry `sent_off`
    or due to `retry_later`. `now` is the caller's clock, for an outbox without one of its
    own: one kept in a database measures leases and retries on the database's clock.
    """

    def put(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        """Puts the new message (added to its repository too) in the outbox, and its fallback
        plan in wait, in the same commit."""
        ...

    async def claim(
        self, channel: Channel, limit: int, lease_seconds: float, now: datetime
    ) -> list[Leased]:
        """Leases due entries of one channel that no other dispatcher holds."""
        ...

    async def renew(
        self, message_ids: Collection[UUID], lease_seconds: float, now: datetime
    ) -> None:
        """Extends the leases of messages still being sent, so no other dispatcher takes them."""
        ...

    def sent_off(self, message_id: UUID) -> None:
        """The message's entry leaves the outbox in this commit: its round ended for good."""
        ...

    def retry_later(self, message_id: UUID, delay: float, now: datetime) -> None:
        """The message's entry is due again `delay` seconds from now, one round more, and no
        longer leased, in this commit."""
        ...

    async def claim_fallbacks(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[DueFallback]:
        """Leases fallbacks that are due by `now`, or whose message failed or bounced."""
        ...

    async def withdraw(self, message_id: UUID, now: datetime) -> bool:
        """Removes the message's entry unless a dispatcher holds it (its lease, or a claim or
        round being recorded right now), in this commit, without waiting; whether it did
        (then no dispatcher will ever claim it). An entry a dispatcher holds may be with a
        provider already: the dispatcher withdraws the message itself if its round does not
        end in an acceptance, or when it next claims it (`Message.withdraw`)."""
        ...

    def forget_fallback(self, message_id: UUID) -> None:
        """The message's fallback plan is dropped in this commit: it fell back, or needs not."""
        ...

    async def waiting_for(self, customer_ids: Collection[UUID]) -> list[UUID]:
        """The messages of these customers still in the outbox (leased or not), as committed."""
        ...


class UnitOfWork(Protocol):
    """Reads and writes that commit together, or not at all."""

    @property
    def identities(self) -> IdentityIndex: ...

    @property
    def decisions(self) -> DecisionIndex: ...

    @property
    def requests(self) -> RequestKeys: ...

    @property
    def deferrals(self) -> Deferrals: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def approvals(self) -> Approvals: ...

    def repository(self, kind: type[A]) -> Repository[A]:
        """The repository of one aggregate type, enlisted in this unit of work."""
        ...


class UnitsOfWork(Protocol):
    """Opens units of work: `async with uows() as uow:` commits when the block ends without
    an error and rolls back otherwise."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...
