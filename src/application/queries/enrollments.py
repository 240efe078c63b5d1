"""A campaign's enrollments a page at a time, and the journeys a customer is in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from application.queries.campaigns import CampaignQueries

if TYPE_CHECKING:
    from uuid import UUID

    from ports.campaigns import CampaignReadModel, CampaignSummary
    from ports.enrollments import (
        EnrollmentPage,
        EnrollmentReadModel,
        EnrollmentStatus,
        EnrollmentView,
    )

__all__ = ["CampaignEnrollmentPage", "CustomerJourney", "EnrollmentQueries"]


@dataclass(frozen=True, slots=True)
class CampaignEnrollmentPage:
    campaign: CampaignSummary
    page: EnrollmentPage


@dataclass(frozen=True, slots=True)
class CustomerJourney:
    """One entry of the customer into a campaign, with the campaign as listed (None: no longer
    listed)."""

    campaign: CampaignSummary | None
    enrollment: EnrollmentView


class EnrollmentQueries:
    """Reads the enrollments projection, naming each campaign as it is listed."""

    def __init__(self, enrollments: EnrollmentReadModel, campaigns: CampaignReadModel) -> None:
        self.enrollments = enrollments
        self.campaigns = campaigns

    async def of_campaign(
        self,
        ref: str,
        *,
        status: EnrollmentStatus | None = None,
        step: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> CampaignEnrollmentPage:
        """The campaign `ref` (id or key; NotFound if none) and a page of its enrollments."""
        campaign = (await CampaignQueries(self.campaigns).get(ref)).summary
        page = await self.enrollments.page(
            campaign.campaign_id, status=status, step=step, after=after, limit=limit
        )
        return CampaignEnrollmentPage(campaign, page)

    async def of_customer(self, customer_id: UUID) -> list[CustomerJourney]:
        """Every entry of the customer into a campaign, newest first."""
        views = await self.enrollments.of_customer(customer_id)
        named: dict[UUID, CampaignSummary | None] = {}
        for campaign_id in {view.campaign_id for view in views}:
            detail = await self.campaigns.detail(campaign_id)
            named[campaign_id] = None if detail is None else detail.summary
        return [CustomerJourney(named[view.campaign_id], view) for view in views]
