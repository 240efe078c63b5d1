"""The campaign stats in memory: the PostgreSQL projection's fold, over the whole log at each
read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.campaign_stats import TOPICS, fold
from domain.campaign.stats import StatsFold
from ports.campaign_stats import Counter

if TYPE_CHECKING:
    from uuid import UUID

    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryCampaignStats"]


class InMemoryCampaignStats:
    """The counters, folded from the log when asked (CampaignStatsReadModel)."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    async def counters(self, campaign_id: UUID) -> list[Counter]:
        folded = StatsFold({}, {})
        fold(folded, list(self.storage.events.read(TOPICS)))
        return [
            Counter(step, split, arm, figure, detail, value)
            for (campaign, step, split, arm, figure, detail), value in sorted(
                folded.counted().items()
            )
            if campaign == campaign_id
        ]
