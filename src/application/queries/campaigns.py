"""Campaigns as listed, and one campaign with its journey in force and its versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.campaigns.stored import streams_named
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from domain.campaign.aggregate import CampaignStatus
    from ports.campaigns import CampaignDetail, CampaignPage, CampaignReadModel

__all__ = ["CampaignQueries"]


class CampaignQueries:
    """Reads the listing written with the campaigns' events."""

    def __init__(self, campaigns: CampaignReadModel) -> None:
        self.campaigns = campaigns

    async def list(
        self, *, status: CampaignStatus | None = None, after: str | None = None, limit: int = 100
    ) -> CampaignPage:
        """By key, a page at a time; `after` is the previous page's `next_cursor`."""
        return await self.campaigns.page(status=status, after=after, limit=limit)

    async def get(self, ref: str) -> CampaignDetail:
        """The campaign under the id or key `ref`; raises NotFound if there is none."""
        for stream in streams_named(ref):
            found = await self.campaigns.detail(stream)
            if found is not None:
                return found
        raise NotFound(f"no campaign {ref!r}")
