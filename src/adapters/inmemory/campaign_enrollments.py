"""The campaign enrollments process's ports in memory, over the in-memory event store."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from domain.campaign.aggregate import CampaignStatus
from domain.campaign.enrollment import Enrollment, PastEntry
from domain.segments.aggregate import Membership

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import Aggregate

    from adapters.inmemory.event_store import InMemoryEventStore
    from ports.campaign_enrollments import EnrollmentRow, KnownCampaign, SentBy
    from ports.unit_of_work import UnitOfWork

__all__ = [
    "InMemoryCampaignStates",
    "InMemoryCampaignTimers",
    "InMemoryCustomerSegments",
    "InMemoryEnrollmentCounts",
    "InMemoryEnrollmentIndex",
    "InMemoryStreams",
]


class InMemoryStreams:
    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def load(self, ids: Collection[UUID]) -> dict[UUID, Aggregate]:
        return self.store.load(ids)


class InMemoryCampaignStates:
    def __init__(self) -> None:
        self.campaigns: dict[UUID, KnownCampaign] = {}

    async def load(self, campaign_ids: Collection[UUID] | None = None) -> list[KnownCampaign]:
        if campaign_ids is None:
            return list(self.campaigns.values())
        return [self.campaigns[c] for c in campaign_ids if c in self.campaigns]

    async def save(self, campaigns: Collection[KnownCampaign]) -> None:
        self.campaigns.update((c.campaign_id, c) for c in campaigns)


class InMemoryEnrollmentIndex:
    def __init__(self) -> None:
        self.rows: dict[UUID, EnrollmentRow] = {}
        self.messages: dict[UUID, SentBy] = {}
        self.places: dict[tuple[UUID, int], int] = {}  # entries counted, by campaign version

    async def past(
        self, campaign_id: UUID, customers: Collection[UUID]
    ) -> dict[UUID, list[PastEntry]]:
        found: dict[UUID, list[PastEntry]] = {}
        for row in sorted(self.rows.values(), key=lambda r: r.entry):
            if row.campaign_id == campaign_id and row.customer_id in customers:
                entry = PastEntry(row.entered_at, row.exited_at)
                found.setdefault(row.customer_id, []).append(entry)
        return found

    async def enrolled(self, campaign_id: UUID, version: int) -> int:
        return sum(
            r.campaign_id == campaign_id and r.version == version for r in self.rows.values()
        )

    async def sends(
        self, campaign_id: UUID, customer_id: UUID, excluding: UUID | None = None
    ) -> int:
        return sum(
            r.sends
            for r in self.rows.values()
            if r.campaign_id == campaign_id
            and r.customer_id == customer_id
            and r.enrollment_id != excluding
        )

    async def active(
        self, customers: Collection[UUID] | None = None, campaign_id: UUID | None = None
    ) -> list[EnrollmentRow]:
        return [
            r
            for r in self.rows.values()
            if r.exited_at is None
            and (customers is None or r.customer_id in customers)
            and (campaign_id is None or r.campaign_id == campaign_id)
        ]

    async def open_goals(self, customers: Collection[UUID], at: datetime) -> list[EnrollmentRow]:
        return [
            r
            for r in self.rows.values()
            if r.exited_at is not None
            and r.goal_until is not None
            and r.goal_until >= at
            and r.customer_id in customers
        ]

    async def known(self, enrollment_ids: Collection[UUID]) -> set[UUID]:
        return {e for e in enrollment_ids if e in self.rows}

    async def save(self, rows: Collection[EnrollmentRow]) -> None:
        self.rows.update((r.enrollment_id, replace(r)) for r in rows)

    async def note_messages(self, messages: Sequence[tuple[UUID, SentBy]]) -> None:
        self.messages.update(messages)

    async def sent_by(self, message_ids: Collection[UUID]) -> dict[UUID, SentBy]:
        return {m: self.messages[m] for m in message_ids if m in self.messages}

    async def messages_of(self, sent: SentBy) -> list[UUID]:
        return [m for m, by in self.messages.items() if by == sent]

    async def take_place(self, campaign_id: UUID, version: int, cap: int) -> bool:
        taken = self.places.get((campaign_id, version), 0)
        if taken >= cap:
            return False
        self.places[(campaign_id, version)] = taken + 1
        return True


class InMemoryCampaignTimers:
    """Timers with no one else to race: a claim is the caller's until it clears them."""

    def __init__(self, states: InMemoryCampaignStates) -> None:
        self.states = states
        self.timers: dict[UUID, tuple[UUID, datetime]] = {}

    async def set(self, timers: Collection[tuple[UUID, UUID, datetime]]) -> None:
        self.timers.update((e, (c, due)) for e, c, due in timers)

    async def clear(self, enrollment_ids: Collection[UUID]) -> None:
        for each in enrollment_ids:
            self.timers.pop(each, None)

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        paused = {
            c.campaign_id
            for c in self.states.campaigns.values()
            if c.status is CampaignStatus.PAUSED
        }
        due = sorted(
            (at, enrollment)
            for enrollment, (campaign, at) in self.timers.items()
            if at <= now and campaign not in paused
        )
        return [enrollment for _, enrollment in due[:limit]]


class InMemoryCustomerSegments:
    """Memberships as the log's entries and exits leave them."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def of(self, customers: Collection[UUID]) -> dict[UUID, frozenset[str]]:
        found: dict[UUID, set[str]] = {}
        for recorded in self.store.log:
            event = recorded.event
            if isinstance(event, Membership.Entered) and event.customer_id in customers:
                found.setdefault(event.customer_id, set()).add(event.segment_key)
            elif isinstance(event, Membership.Exited) and event.customer_id in customers:
                found.setdefault(event.customer_id, set()).discard(event.segment_key)
        return {customer: frozenset(keys) for customer, keys in found.items()}


class InMemoryEnrollmentCounts:
    """Counts the entries committed to the store: the unit of work entering a customer holds
    its campaign (`Repository.get`), so entries into one campaign take turns, and one that does
    not commit counts for nothing."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self.store = store

    async def take_place(self, uow: UnitOfWork, campaign_id: UUID, version: int, cap: int) -> bool:
        found = self.store.load(self.store.started_by(Enrollment)).values()
        entered = sum(
            isinstance(e, Enrollment)
            and e.campaign_id == campaign_id
            and e.campaign_version == version
            for e in found
        )
        return entered < cap
