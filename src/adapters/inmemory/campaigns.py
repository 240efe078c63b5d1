"""Campaigns as their in-memory streams say; the template and segment keys beside them."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from adapters.cursors import cursor_of_key, key_of_cursor
from domain.campaign.aggregate import Campaign
from domain.campaign.journey_reader import journey_document
from domain.segments.aggregate import Segment
from domain.templates.aggregate import Template
from ports.campaigns import CampaignDetail, CampaignPage, CampaignSummary, versions_written

if TYPE_CHECKING:
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage
    from domain.campaign.aggregate import CampaignStatus

__all__ = ["InMemoryCampaigns", "InMemoryJourneyReferences"]


class InMemoryCampaigns:
    """Campaigns by key (CampaignReadModel), read from the log."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    def _campaigns(self) -> list[Campaign]:
        streams = self.storage.events.started_by(Campaign)
        loaded = self.storage.events.load(streams).values()
        return sorted((cast("Campaign", found) for found in loaded), key=lambda c: c.key)

    async def page(
        self, *, status: CampaignStatus | None, after: str | None, limit: int
    ) -> CampaignPage:
        start = key_of_cursor(after)
        found = [
            _summary(campaign)
            for campaign in self._campaigns()
            if (status is None or campaign.status is status)
            and (start is None or campaign.key > start)
        ]
        items = found[:limit]
        return CampaignPage(items, cursor_of_key(items[-1].key) if len(found) > limit else None)

    async def detail(self, campaign_id: UUID) -> CampaignDetail | None:
        found = self.storage.events.load([campaign_id]).get(campaign_id)
        if not isinstance(found, Campaign):
            return None
        events = [recorded.event for recorded in self.storage.events.stream(campaign_id)]
        versions = {written.version: written for written in versions_written(events)}
        return CampaignDetail(
            _summary(found),
            journey_document(found.journey),
            tuple(versions[number] for number in sorted(versions)),
        )


def _summary(campaign: Campaign) -> CampaignSummary:
    return CampaignSummary(
        campaign.key,
        campaign.id,
        campaign.name,
        campaign.status,
        campaign.number,
        campaign.changed_at,
    )


class InMemoryJourneyReferences:
    """Template and segment keys from their streams (JourneyReferences)."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def template_keys(self) -> set[str]:
        streams = self.storage.events.started_by(Template)
        loaded = self.storage.events.load(streams).values()
        return {t.key for t in cast("list[Template]", list(loaded)) if t.latest is not None}

    async def segment_keys(self) -> set[str]:
        streams = self.storage.events.started_by(Segment)
        loaded = self.storage.events.load(streams).values()
        return {s.key for s in cast("list[Segment]", list(loaded)) if not s.deleted}
