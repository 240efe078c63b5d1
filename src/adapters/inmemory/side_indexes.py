"""The side indexes of a unit of work, as PostgreSQL's behave: claims, merges and forgotten
deferrals count for the unit at once (they are statements in its transaction), the other rows
are written with its events; nothing reaches the shared tables before the unit commits, and
then only after every check that can make it conflict."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from adapters.inmemory.storage import DecisionRow, DeferredRow, FallbackRow, OutboxEntry
from adapters.system.trace_context import current_traceparent
from domain.message.aggregate import Message, MessageStatus
from ports.delivery import DueFallback
from ports.unit_of_work import ConcurrencyConflict, DueMessage, Leased

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from datetime import datetime
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from domain.customer.identities import Identity
    from domain.policy.decision import SendRequest
    from domain.policy.vocabulary import Channel
    from ports.approvals import ApprovalRecord, ApprovalStatus
    from ports.delivery import Delivery, FallbackPlan
    from ports.unit_of_work import EarlierRequest

__all__ = [
    "StagedApprovals",
    "StagedDecisions",
    "StagedDeferrals",
    "StagedIdentities",
    "StagedOutbox",
    "StagedRequestKeys",
]


class StagedIdentities:
    """Claims and merges, in the order they were made, over the committed index."""

    def __init__(
        self,
        storage: InMemoryStorage,
        on_erase: Callable[[Collection[UUID]], None] | None = None,
    ) -> None:
        self.storage = storage
        self.on_erase = on_erase  # the erased customers' deferred messages are dropped too
        # claims, merges, erasures
        self.changes: list[dict[Identity, UUID] | tuple[UUID, UUID] | frozenset[UUID]] = []

    def _applied(self) -> tuple[dict[Identity, UUID], dict[UUID, UUID]]:
        owners = dict(self.storage.identities)
        merges = dict(self.storage.merges)
        for change in self.changes:
            if isinstance(change, dict):
                if any(identity in owners for identity in change):
                    raise ConcurrencyConflict("an identity was claimed by a concurrent writer")
                owners.update(change)
            elif isinstance(change, frozenset):
                owners = {i: owner for i, owner in owners.items() if owner not in change}
            else:
                merged_id, survivor_id = change
                if merged_id in merges:
                    raise ConcurrencyConflict("the customer was merged by a concurrent writer")
                for identity, owner in owners.items():
                    if owner == merged_id:
                        owners[identity] = survivor_id
                for earlier, survivor in merges.items():
                    if survivor == merged_id:
                        merges[earlier] = survivor_id
                merges[merged_id] = survivor_id
        return owners, merges

    async def resolve(self, identities: Collection[Identity]) -> dict[Identity, UUID]:
        owners, _ = self._applied()
        return {identity: owners[identity] for identity in identities if identity in owners}

    async def claim(self, owners: Mapping[Identity, UUID]) -> None:
        self.changes.append(dict(owners))
        try:
            self._applied()
        except ConcurrencyConflict:
            self.changes.pop()
            raise

    async def record_merge(self, merged_id: UUID, survivor_id: UUID) -> None:
        self.changes.append((merged_id, survivor_id))
        try:
            self._applied()
        except ConcurrencyConflict:
            self.changes.pop()
            raise

    async def erase(
        self, customer_ids: Collection[UUID], identities: Collection[Identity], at: datetime
    ) -> None:
        """No keys here: events are kept as they were given, in memory."""
        self.changes.append(frozenset(customer_ids))
        if self.on_erase is not None:
            self.on_erase(customer_ids)

    def prepare_commit(self) -> Callable[[], None]:
        owners, merges = self._applied()

        def apply() -> None:
            self.storage.identities = owners
            self.storage.merges = merges

        return apply


class StagedDecisions:
    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage
        self.rows: list[DecisionRow] = []

    def add(
        self, decision_id: UUID, message_id: UUID, customer_id: UUID, stream_version: int
    ) -> None:
        self.rows.append(DecisionRow(decision_id, message_id, customer_id, stream_version))

    def prepare_commit(self) -> Callable[[], None]:
        ids = [row.decision_id for row in self.rows]
        if len(set(ids)) != len(ids) or any(i in self.storage.decisions for i in ids):
            raise ConcurrencyConflict("a decision id was indexed twice")

        def apply() -> None:
            self.storage.decisions.update((row.decision_id, row) for row in self.rows)

        return apply


class StagedRequestKeys:
    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage
        self.added: dict[str, EarlierRequest] = {}
        self.repeated = False

    async def earlier(self, idempotency_key: str) -> EarlierRequest | None:
        return self.storage.requests.get(idempotency_key)

    async def earlier_all(self, idempotency_keys: Collection[str]) -> dict[str, EarlierRequest]:
        found = self.storage.requests
        return {key: found[key] for key in idempotency_keys if key in found}

    def add(self, idempotency_key: str, earlier: EarlierRequest) -> None:
        self.repeated = self.repeated or idempotency_key in self.added
        self.added[idempotency_key] = earlier

    def prepare_commit(self) -> Callable[[], None]:
        if self.repeated or any(key in self.storage.requests for key in self.added):
            raise ConcurrencyConflict("a request with this idempotency key committed first")

        def apply() -> None:
            self.storage.requests.update(self.added)

        return apply


class StagedDeferrals:
    """Deferred messages, as PostgreSQL's table: a message forgotten is gone for the rest of
    the unit at once, a new due time is written when the unit commits; those this unit claims
    stay held until it ends."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage
        self.deferred: list[DeferredRow] = []
        self.forgotten: set[UUID] = set()
        self.holding: set[UUID] = set()

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
        self.deferred.append(
            DeferredRow(message_id, customer_id, due_at, request, origin, delivery, approval_id)
        )

    async def forget(self, message_id: UUID) -> None:
        self.forgotten.add(message_id)

    def forget_customers(self, customer_ids: Collection[UUID]) -> None:
        """Every deferred message of these customers is gone for the rest of the unit."""
        erased = set(customer_ids)
        self.forgotten |= {m for m, row in self._remaining().items() if row.customer_id in erased}
        self.deferred = [row for row in self.deferred if row.customer_id not in erased]

    async def withdraw(self, message_id: UUID) -> DueMessage | None:
        row = self._remaining().get(message_id)
        if row is None:
            return None
        self.forgotten.add(message_id)
        return _due(row)

    def _remaining(self) -> dict[UUID, DeferredRow]:
        rows = self.storage.deferred
        return {m: row for m, row in rows.items() if m not in self.forgotten}

    async def claim_due(self, now: datetime, limit: int) -> list[DueMessage]:
        due = [
            row
            for row in self._remaining().values()
            if row.due_at <= now
            and (row.message_id in self.holding or row.message_id not in self.storage.held)
        ]
        due.sort(key=lambda row: (-row.request.priority, row.due_at))
        claimed = due[:limit]
        for row in claimed:
            self.holding.add(row.message_id)
            self.storage.held.add(row.message_id)
        return [_due(row) for row in claimed]

    async def withdraw_customers(self, customer_ids: Collection[UUID]) -> list[DueMessage]:
        erased = set(customer_ids)
        rows = [row for row in self._remaining().values() if row.customer_id in erased]
        self.forgotten |= {row.message_id for row in rows}
        return [_due(row) for row in rows]

    def release(self) -> None:
        self.storage.held -= self.holding
        self.holding.clear()

    def prepare_commit(self) -> Callable[[], None]:
        rows = self._remaining()
        for row in self.deferred:
            earlier = rows.get(row.message_id)
            # As the table's upsert: a message deferred again keeps its request, due later.
            rows[row.message_id] = row if earlier is None else replace(earlier, due_at=row.due_at)

        def apply() -> None:
            self.storage.deferred = rows

        return apply


def _due(row: DeferredRow) -> DueMessage:
    return DueMessage(
        row.message_id, row.customer_id, row.request, row.origin, row.delivery, row.approval_id
    )


class StagedApprovals:
    """Holds and verdicts, written when the unit commits."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage
        self.staged: dict[UUID, ApprovalRecord] = {}

    def hold(self, record: ApprovalRecord) -> None:
        self.staged[record.approval_id] = record

    async def get(self, approval_id: UUID) -> ApprovalRecord | None:
        return self.staged.get(approval_id) or self.storage.approvals.get(approval_id)

    async def settle(
        self,
        approval_id: UUID,
        status: ApprovalStatus,
        by: str,
        note: str | None,
        at: datetime,
        decision_id: UUID,
    ) -> None:
        known = self.staged.get(approval_id) or self.storage.approvals[approval_id]
        self.staged[approval_id] = replace(
            known, status=status, settled_by=by, note=note, settled_at=at, decision_id=decision_id
        )

    def prepare_commit(self) -> Callable[[], None]:
        def apply() -> None:
            self.storage.approvals.update(self.staged)

        return apply


_FALLS_BACK_AT_ONCE = frozenset({MessageStatus.FAILED, MessageStatus.BOUNCED})


def _free(leased_until: datetime | None, now: datetime) -> bool:
    return leased_until is None or leased_until < now


class StagedOutbox:
    """New messages with their outbox entries and fallback plans (`add` saves the message),
    and the ends of dispatch rounds, written when the unit commits; leases count at once, on
    the `now` their callers give."""

    def __init__(self, storage: InMemoryStorage, add: Callable[[Message], None]) -> None:
        self.storage = storage
        self.add = add
        self.entries: list[OutboxEntry] = []
        self.fallbacks: list[FallbackRow] = []
        self.sent: set[UUID] = set()
        self.retries: dict[UUID, datetime] = {}
        self.forgotten: set[UUID] = set()

    def put(self, message: Message, fallback: FallbackPlan | None = None) -> None:
        self.add(message)
        self.entries.append(
            OutboxEntry(message.id, message.channel, trace_context=current_traceparent())
        )
        if fallback is not None:
            self.fallbacks.append(FallbackRow(message.id, message.customer_id, fallback))

    async def claim(
        self, channel: Channel, limit: int, lease_seconds: float, now: datetime
    ) -> list[Leased]:
        due = [
            entry
            for entry in self.storage.outbox.values()
            if entry.channel is channel
            and (entry.due_at is None or entry.due_at <= now)
            and _free(entry.leased_until, now)
        ][:limit]
        for entry in due:
            entry.leased_until = now + timedelta(seconds=lease_seconds)
        return [Leased(entry.message_id, entry.attempts, entry.trace_context) for entry in due]

    async def renew(
        self, message_ids: Collection[UUID], lease_seconds: float, now: datetime
    ) -> None:
        for message_id in message_ids:
            entry = self.storage.outbox.get(message_id)
            if entry is not None:
                entry.leased_until = now + timedelta(seconds=lease_seconds)

    def sent_off(self, message_id: UUID) -> None:
        self.sent.add(message_id)

    def retry_later(self, message_id: UUID, delay: float, now: datetime) -> None:
        self.retries[message_id] = now + timedelta(seconds=delay)

    async def claim_fallbacks(
        self, now: datetime, limit: int, lease_seconds: float
    ) -> list[DueFallback]:
        claimed: list[DueFallback] = []
        for row in sorted(self.storage.fallbacks.values(), key=lambda r: r.plan.due_at):
            if len(claimed) == limit or not _free(row.leased_until, now):
                continue
            message = self.storage.events.load([row.message_id]).get(row.message_id)
            status = message.status if isinstance(message, Message) else MessageStatus.QUEUED
            if row.plan.due_at <= now or status in _FALLS_BACK_AT_ONCE:
                row.leased_until = now + timedelta(seconds=lease_seconds)
                claimed.append(
                    DueFallback(
                        row.message_id,
                        row.customer_id,
                        row.plan.request,
                        row.plan.delivery,
                        status.value,
                    )
                )
        return claimed

    async def withdraw(self, message_id: UUID, now: datetime) -> bool:
        entry = self.storage.outbox.get(message_id)
        if entry is None or not _free(entry.leased_until, now):
            return False
        self.sent.add(message_id)
        return True

    def forget_fallback(self, message_id: UUID) -> None:
        self.forgotten.add(message_id)

    async def waiting_for(self, customer_ids: Collection[UUID]) -> list[UUID]:
        erased = set(customer_ids)
        waiting = sorted(self.storage.outbox)
        loaded = self.storage.events.load(waiting)
        return [
            message_id
            for message_id in waiting
            if isinstance(found := loaded.get(message_id), Message) and found.customer_id in erased
        ]

    def forget_customers(self, customer_ids: Collection[UUID]) -> None:
        """The fallback plans of these customers' messages are dropped in this commit."""
        erased = set(customer_ids)
        rows = [*self.storage.fallbacks.values(), *self.fallbacks]
        self.forgotten |= {row.message_id for row in rows if row.customer_id in erased}

    def prepare_commit(self) -> Callable[[], None]:
        # A message id used before conflicts as its stream's first event does.
        def apply() -> None:
            outbox = self.storage.outbox
            for new in self.entries:
                outbox[new.message_id] = new
                self.storage.messages.add(new.message_id)
            for row in self.fallbacks:
                self.storage.fallbacks[row.message_id] = row
            for message_id in self.sent:
                outbox.pop(message_id, None)
            for message_id, due_at in self.retries.items():
                entry = outbox.get(message_id)
                if entry is not None:
                    entry.due_at = due_at
                    entry.attempts += 1
                    entry.leased_until = None
            for message_id in self.forgotten:
                self.storage.fallbacks.pop(message_id, None)

        return apply
