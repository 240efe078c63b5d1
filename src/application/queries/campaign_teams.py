"""Campaigns as a key limited to teams reads them: only those whose every version sends as its
teams alone (application/campaigns/teams.py says what a campaign's teams are)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.campaigns.teams import campaign_teams, check_campaign
from application.queries.campaign_history import versions_of
from application.queries.campaigns import CampaignQueries
from ports.campaigns import CampaignPage

if TYPE_CHECKING:
    from collections.abc import Set
    from uuid import UUID

    from domain.campaign.aggregate import CampaignStatus
    from domain.campaign.journey import Journey
    from ports.campaigns import CampaignDetail, CampaignReadModel, CampaignSummary
    from ports.history import History

__all__ = ["CampaignTeams"]


class CampaignTeams:
    """Reads each campaign's versions from its own stream, to tell which teams it sends as.

    `teams` is the reader's: a key's teams, or None for a key that acts for every team (which
    reads every campaign, and costs no read of a stream)."""

    def __init__(self, campaigns: CampaignReadModel, history: History) -> None:
        self.campaigns = CampaignQueries(campaigns)
        self.history = history

    async def versions(self, campaign_id: UUID) -> dict[int, Journey]:
        """Each version's journey."""
        return versions_of(await self.history.stream(campaign_id))

    async def get(self, ref: str, teams: Set[str] | None) -> CampaignDetail:
        """The campaign `ref` (key or id; NotFound if none), if it sends as `teams` alone;
        SendsAsOtherTeams if not."""
        detail = await self.campaigns.get(ref)
        if teams is not None:
            check_campaign(await self.versions(detail.summary.campaign_id), teams)
        return detail

    async def check(self, ref: str, teams: Set[str] | None) -> None:
        """Nothing if the campaign `ref` (key or id; NotFound if none) sends as `teams` alone,
        or `teams` is None; SendsAsOtherTeams if not."""
        if teams is not None:
            await self.get(ref, teams)

    async def list(
        self,
        teams: Set[str] | None,
        *,
        status: CampaignStatus | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> CampaignPage:
        """By key, a page at a time, of the campaigns that send as `teams` alone; `after` is the
        previous page's `next_cursor`. Each campaign's stream is read to tell its teams, so a
        page is full unless it is the last, and its cursor may lead to an empty one."""
        if teams is None:
            return await self.campaigns.list(status=status, after=after, limit=limit)
        found: list[CampaignSummary] = []
        while True:
            # Each read asks for no more than the page still lacks, so that its cursor, past
            # every campaign it read, is the cursor of the page.
            read = await self.campaigns.list(status=status, after=after, limit=limit - len(found))
            for summary in read.items:
                if campaign_teams((await self.versions(summary.campaign_id)).values()) <= teams:
                    found.append(summary)
            after = read.next_cursor
            if after is None or len(found) == limit:
                return CampaignPage(found, after)
