"""A campaign's stats: its figures per step and per variant, and each arm against the control
group (docs/campaign-stats.md)."""

from __future__ import annotations

from typing import Annotated, Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get
from litestar.params import Parameter

from application.campaigns.teams import SendsAsOtherTeams
from application.queries.campaign_stats import CampaignStats, CampaignStatsQueries
from application.queries.campaign_teams import CampaignTeams
from entrypoints.http.auth import READERS, allow
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key

__all__ = ["CampaignStatsController"]


class CampaignStatsController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    exception_handlers = {SendsAsOtherTeams: sends_as_other_teams}

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
            "intervals for the conversion rates, Newcombe's for the difference, at `confidence`. "
            "A key limited to teams, of a campaign with a send step of another team in any "
            "version (its sends and costs are that team's): 403."
        ),
    )
    @inject
    async def get_campaign_stats(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key, or its id")],
        request: Request[Any, Any, Any],
        queries: FromDishka[CampaignStatsQueries],
        campaigns: FromDishka[CampaignTeams],
    ) -> CampaignStats:
        await campaigns.check(campaign, teams_of_key(request))
        return await queries.get(campaign)
