"""Enrols a customer in a campaign entered through the API; the campaign process takes it on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import Enrollment, PastEntry, enrollment_id, entry_refusal
from domain.campaign.journey import OnApi
from domain.customer.aggregate import Customer
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from uuid import UUID

    from ports.campaign_enrollments import EnrollmentCounts
    from ports.clock import Clock
    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = ["EnrollCustomer", "EnrollmentRefused"]

_LOOK_AHEAD = 8  # entries read at once while looking for a customer's next one


class EnrollmentRefused(DomainError):
    """The campaign does not let the customer in now; the message says why."""


class EnrollCustomer:
    """Records the customer's next entry into an active campaign whose entry is the API, if its
    policies (re-entry, cap) let them in; the campaign process begins the journey."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, counts: EnrollmentCounts) -> None:
        self.uows = uows
        self.clock = clock
        self.counts = counts

    async def __call__(self, campaign_id: UUID, customer_id: UUID) -> UUID:
        """The new enrollment's id."""

        async def attempt() -> UUID:
            async with self.uows() as uow:
                campaign = (await uow.repository(Campaign).get([campaign_id])).get(campaign_id)
                if campaign is None:
                    raise NotFound(f"no campaign {campaign_id}")
                if not campaign.takes_entries:
                    raise EnrollmentRefused(f"campaign {campaign.key!r} is {campaign.status}")
                journey = campaign.journey
                if not isinstance(journey.entry, OnApi):
                    entered_on = journey.entry.__struct_config__.tag
                    raise EnrollmentRefused(
                        f"campaign {campaign.key!r} is entered on {entered_on}, not through the API"
                    )
                customers = uow.repository(Customer)
                if customer_id not in await customers.existing([customer_id]):
                    raise NotFound(f"no customer {customer_id}")
                enrollments = uow.repository(Enrollment)
                past = await _past_entries(enrollments, campaign_id, customer_id)
                now = self.clock.now()
                enrolled = await self.counts.enrolled(campaign_id, campaign.number)
                refusal = entry_refusal(journey.policies, past, enrolled, now)
                if refusal is not None:
                    raise EnrollmentRefused(refusal)
                enrollment = Enrollment.enter(
                    campaign_id, campaign.number, customer_id, len(past) + 1, "api", now
                )
                enrollments.add(enrollment)
                return enrollment.id

        return await retry_on_conflict(attempt)


async def _past_entries(
    enrollments: Repository[Enrollment], campaign_id: UUID, customer_id: UUID
) -> list[PastEntry]:
    """The customer's entries so far: their streams are numbered from 1, without gaps."""
    past: list[PastEntry] = []
    while True:
        ids = [
            enrollment_id(campaign_id, customer_id, n)
            for n in range(len(past) + 1, len(past) + 1 + _LOOK_AHEAD)
        ]
        found = await enrollments.get(ids)
        for each in ids:
            entry = found.get(each)
            if entry is None:
                return past
            past.append(PastEntry(entry.entered_at, entry.exited_at))
