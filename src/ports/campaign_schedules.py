"""What broadcasts keep and read: each scheduled campaign's durable timer, the members of the
segment it reaches with their time zones, and which customer each occurrence enrolled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ports.campaign_enrollments import CampaignEnrollmentPorts

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime
    from uuid import UUID

__all__ = ["Audience", "CampaignSchedules", "DueSchedule", "ScheduledPorts", "TimedBroadcasts"]


@dataclass(frozen=True, slots=True)
class DueSchedule:
    """A scheduled campaign whose timer is due, and how far its schedule has been run."""

    campaign_id: UUID
    checked_until: datetime


@dataclass(frozen=True, slots=True)
class Audience:
    """A member of a segment and the time zone on their profile, if any."""

    customer_id: UUID
    time_zone: str | None


class CampaignSchedules(Protocol):
    """The schedules' durable timers, one a campaign."""

    async def claim_due(self, now: datetime, limit: int) -> list[DueSchedule]:
        """Up to `limit` active scheduled campaigns due by `now` (timers are first made for new
        ones, and dropped for archived ones); held by this transaction, skipped by others."""
        ...

    async def moved(
        self, campaign_id: UUID, checked_until: datetime, due_at: datetime | None
    ) -> None:
        """Records the schedule run up to `checked_until`, next due at `due_at` (None: never)."""
        ...

    async def audience(self, segment: str) -> list[Audience]:
        """The members of the segment, with their time zones."""
        ...

    async def entered(
        self, campaign_id: UUID, entries: Collection[tuple[UUID, datetime]]
    ) -> set[UUID]:
        """Records these (customer, occurrence); the customers not recorded before for theirs."""
        ...


class ScheduledPorts(CampaignEnrollmentPorts, Protocol):
    """The enrollments process's ports, with the schedules'."""

    @property
    def campaign_schedules(self) -> CampaignSchedules: ...


class TimedBroadcasts(Protocol):
    """The process's work that schedules bring: broadcasts that fall due."""

    @property
    def name(self) -> str:
        """The process's name, whose turn a run takes."""
        ...

    async def scheduled(self, ports: ScheduledPorts, limit: int) -> int:
        """Runs up to `limit` due schedules, enrolling each occurrence's members once; how many
        it ran."""
        ...
