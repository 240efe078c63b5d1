"""A campaign's figures per step and per variant, as the stats projection counts them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from decimal import Decimal
    from uuid import UUID

__all__ = ["CampaignStatsReadModel", "Counter"]


@dataclass(frozen=True, slots=True)
class Counter:
    """One figure of one step and variant (see `domain.campaign.stats`)."""

    step: str
    split: str
    arm: str
    figure: str
    detail: str
    value: Decimal


class CampaignStatsReadModel(Protocol):
    """The counters of the stats projection."""

    async def counters(self, campaign_id: UUID) -> list[Counter]:
        """Every counter of the campaign that is not nothing."""
        ...
