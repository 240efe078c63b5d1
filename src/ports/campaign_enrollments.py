"""What the campaign enrollments process keeps and reads: the campaigns as of its place in the
log, an index of the enrollments it takes through their journeys, which message each send made,
and their durable timers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import Aggregate

    from domain.campaign.aggregate import CampaignStatus
    from domain.campaign.enrollment import PastEntry
    from domain.campaign.journey import Entry
    from ports.processes import EventLog
    from ports.segment_evaluation import CustomerFacts
    from ports.unit_of_work import UnitOfWork

__all__ = [
    "CampaignEnrollmentPorts",
    "CampaignStates",
    "CampaignTimers",
    "CustomerSegments",
    "EnrollmentCounts",
    "EnrollmentIndex",
    "EnrollmentRow",
    "KnownCampaign",
    "SentBy",
    "Streams",
    "TimedEnrollments",
]


@dataclass(frozen=True, slots=True)
class KnownCampaign:
    """A campaign as of the process's place in the log: its status, the version in force, how
    that version is entered, why it was archived if it was, and since when the version in force
    has been live (activated, or published while active)."""

    campaign_id: UUID
    key: str
    status: CampaignStatus
    version: int
    entry: Entry
    archived_reason: str | None = None
    live_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class EnrollmentRow:
    """One enrollment, as the process indexes it; `goal_until` is until when its goal still
    counts (None without a goal, or once converted)."""

    enrollment_id: UUID
    campaign_id: UUID
    version: int
    customer_id: UUID
    entry: int
    entered_at: datetime
    exited_at: datetime | None
    sends: int
    goal_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SentBy:
    """The enrollment and step a message was sent for."""

    enrollment_id: UUID
    step: str


class CampaignStates(Protocol):
    """The campaigns the process has folded, kept with its position."""

    async def load(self, campaign_ids: Collection[UUID] | None = None) -> list[KnownCampaign]:
        """These campaigns (every one, for None) as folded so far."""
        ...

    async def save(self, campaigns: Collection[KnownCampaign]) -> None:
        """Replaces the states of these campaigns."""
        ...


class EnrollmentIndex(Protocol):
    """Every enrollment the process has seen, and the messages their sends made."""

    async def past(
        self, campaign_id: UUID, customers: Collection[UUID]
    ) -> dict[UUID, list[PastEntry]]:
        """Each customer's entries into the campaign so far, first entry first."""
        ...

    async def enrolled(self, campaign_id: UUID, version: int) -> int:
        """How many entries the campaign's version has had."""
        ...

    async def sends(
        self, campaign_id: UUID, customer_id: UUID, excluding: UUID | None = None
    ) -> int:
        """How many sends of the campaign count for the customer's send limit, over all their
        entries but `excluding` (the enrollment in hand, which counts its own)."""
        ...

    async def active(
        self, customers: Collection[UUID] | None = None, campaign_id: UUID | None = None
    ) -> list[EnrollmentRow]:
        """The enrollments not exited, of these customers and this campaign where given."""
        ...

    async def open_goals(self, customers: Collection[UUID], at: datetime) -> list[EnrollmentRow]:
        """The exited, not converted enrollments of these customers whose goal still counts at
        `at`: a goal reached after leaving the journey converts them."""
        ...

    async def known(self, enrollment_ids: Collection[UUID]) -> set[UUID]:
        """Which of these enrollments are indexed."""
        ...

    async def save(self, rows: Collection[EnrollmentRow]) -> None:
        """Adds or replaces these rows."""
        ...

    async def note_messages(self, messages: Sequence[tuple[UUID, SentBy]]) -> None:
        """Remembers which send made each message."""
        ...

    async def sent_by(self, message_ids: Collection[UUID]) -> dict[UUID, SentBy]:
        """The send that made each of these messages, for the campaign's ones."""
        ...

    async def messages_of(self, sent: SentBy) -> list[UUID]:
        """The messages this send of this enrollment made (its fallback's too)."""
        ...

    async def take_place(self, campaign_id: UUID, version: int, cap: int) -> bool:
        """Counts one more entry into the campaign's version, in the process's transaction, if
        fewer than `cap` entered it so far (through the API too); False, counting nothing, once
        the cap is reached."""
        ...


class EnrollmentCounts(Protocol):
    """The entries into each capped campaign version, counted with the entries themselves, so
    that entries made at once, in any process, cannot pass its enrollment cap."""

    async def take_place(self, uow: UnitOfWork, campaign_id: UUID, version: int, cap: int) -> bool:
        """Counts one more entry into the version in `uow`'s transaction (uncounted if it rolls
        back), if fewer than `cap` entered it so far, however they entered; False, counting
        nothing, once the cap is reached. Entries at once wait for each other here."""
        ...


class CampaignTimers(Protocol):
    """When each held enrollment is next due, at most one timer an enrollment."""

    async def set(self, timers: Collection[tuple[UUID, UUID, datetime]]) -> None:
        """Sets (or moves) the timers of these (enrollment, campaign, due at)."""
        ...

    async def clear(self, enrollment_ids: Collection[UUID]) -> None:
        """Drops the timers of these enrollments."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[UUID]:
        """Up to `limit` enrollments whose timer is due by `now`, soonest first, leaving out
        paused campaigns; held by this transaction and skipped by any other until it ends."""
        ...


class CustomerSegments(Protocol):
    """Which segments each customer is in now."""

    async def of(self, customers: Collection[UUID]) -> dict[UUID, frozenset[str]]:
        """The keys of the segments each customer is a member of."""
        ...


class Streams(Protocol):
    """Aggregates read from their streams, as last committed."""

    async def load(self, ids: Collection[UUID]) -> dict[UUID, Aggregate]:
        """The aggregates under these ids that exist."""
        ...


class CampaignEnrollmentPorts(Protocol):
    """The ports the process works through, bound to one transaction."""

    @property
    def events(self) -> EventLog:
        """Where enrollments' events are recorded."""
        ...

    @property
    def streams(self) -> Streams:
        """Campaigns and enrollments, as last committed."""
        ...

    @property
    def campaign_states(self) -> CampaignStates: ...

    @property
    def enrollment_index(self) -> EnrollmentIndex: ...

    @property
    def campaign_timers(self) -> CampaignTimers: ...

    @property
    def customer_facts(self) -> CustomerFacts:
        """What journey conditions hold over."""
        ...

    @property
    def customer_segments(self) -> CustomerSegments: ...


class TimedEnrollments(Protocol):
    """The process's work that time alone brings: the timers that fall due."""

    @property
    def name(self) -> str:
        """The process's name, whose turn a timer run takes."""
        ...

    async def due(self, ports: CampaignEnrollmentPorts, limit: int) -> int:
        """Fires up to `limit` due timers, each exactly once; how many it fired."""
        ...
