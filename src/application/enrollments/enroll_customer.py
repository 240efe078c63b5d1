"""Enrols a customer in a campaign entered through the API; the campaign process takes it on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from domain.campaign.aggregate import Campaign
from domain.campaign.enrollment import (
    Enrollment,
    PastEntry,
    cap_reached,
    enrollment_id,
    re_entry_refusal,
)
from domain.campaign.journey import OnApi
from domain.customer.aggregate import Customer
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from uuid import UUID

    from ports.campaign_enrollments import EnrollmentCounts
    from ports.clock import Clock
    from ports.unit_of_work import Repository, UnitsOfWork

__all__ = ["EnrollCustomer", "Enrolled", "EnrollmentRefused"]

_LOOK_AHEAD = 8  # entries read at once while looking for a customer's next one


class EnrollmentRefused(DomainError):
    """The campaign does not let the customer in now; the message says why."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    """The entry a request made, or the one an earlier request with its key made."""

    enrollment_id: UUID
    created: bool


class EnrollCustomer:
    """Records the customer's next entry into an active campaign whose entry is the API, if its
    policies (re-entry, cap) let them in; the campaign process begins the journey. The entry
    takes its place under the cap in the transaction that records it (`EnrollmentCounts`), so
    entries made at once, in any process, cannot pass it.

    An entry made with an idempotency key records it in its source (`api:<key>`): the same key
    again for the same campaign and customer answers that entry, whatever happened since."""

    def __init__(self, uows: UnitsOfWork, clock: Clock, counts: EnrollmentCounts) -> None:
        self.uows = uows
        self.clock = clock
        self.counts = counts

    async def __call__(self, campaign_id: UUID, customer_id: UUID) -> UUID:
        """The new enrollment's id."""
        return (await self.enter(campaign_id, customer_id)).enrollment_id

    async def enter(
        self, campaign_id: UUID, customer_id: UUID, idempotency_key: str | None = None
    ) -> Enrolled:
        """The new entry, or the one made earlier with `idempotency_key`."""
        source = "api" if idempotency_key is None else f"api:{idempotency_key}"

        async def attempt() -> Enrolled:
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
                if idempotency_key is not None:
                    for n, (_, earlier_source) in enumerate(past, 1):
                        if earlier_source == source:
                            made = enrollment_id(campaign_id, customer_id, n)
                            return Enrolled(made, created=False)
                now = self.clock.now()
                refusal = re_entry_refusal(journey.policies, [entry for entry, _ in past], now)
                if refusal is not None:
                    raise EnrollmentRefused(refusal)
                cap = journey.policies.enrollment_cap
                if cap is not None and not await self.counts.take_place(
                    uow, campaign_id, campaign.number, cap
                ):
                    raise EnrollmentRefused(cap_reached(cap))
                enrollment = Enrollment.enter(
                    campaign_id, campaign.number, customer_id, len(past) + 1, source, now
                )
                enrollments.add(enrollment)
                return Enrolled(enrollment.id, created=True)

        return await retry_on_conflict(attempt)


async def _past_entries(
    enrollments: Repository[Enrollment], campaign_id: UUID, customer_id: UUID
) -> list[tuple[PastEntry, str]]:
    """The customer's entries so far, with their sources: their streams are numbered from 1,
    without gaps."""
    past: list[tuple[PastEntry, str]] = []
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
            past.append((PastEntry(entry.entered_at, entry.exited_at), entry.source))
