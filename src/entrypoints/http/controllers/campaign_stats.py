"""A campaign's stats: its figures per step and per variant, and each arm against the control
group (docs/campaign-stats.md)."""

from __future__ import annotations

from typing import Annotated

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get
from litestar.params import Parameter

from application.queries.campaign_stats import CampaignStats, CampaignStatsQueries
from entrypoints.http.auth import READERS, allow

__all__ = ["CampaignStatsController"]


class CampaignStatsController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]

    @get(
        "/{campaign:str}/stats",
        operation_id="getCampaignStats",
        name="campaigns:stats",
        guards=[allow(*READERS)],
        summary="A campaign's figures per step and variant, and each arm against the control",
        description=(
            "Per step (and for the whole journey) and per variant (every enrollment, and each "
            "arm of each split, the control group too): entered, waiting now, sent, suppressed "
            "(by reason), deferred, delivered, opened, clicked, replied, failed, converted and "
            "cost by currency. Each split's arms are compared with its control group: Wilson "
            "intervals for the conversion rates, Newcombe's for the difference, at `confidence`."
        ),
    )
    @inject
    async def get_campaign_stats(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key, or its id")],
        queries: FromDishka[CampaignStatsQueries],
    ) -> CampaignStats:
        return await queries.get(campaign)
