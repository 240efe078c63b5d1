"""A campaign's history: every change of its status and every version, who made it, when, why."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get
from litestar.params import Parameter

from application.campaigns.teams import SendsAsOtherTeams
from application.queries.campaign_history import CampaignChange, CampaignHistoryQueries
from application.queries.campaign_teams import CampaignTeams
from entrypoints.http.auth import READERS, allow
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key

__all__ = ["CampaignHistoryController"]


class CampaignHistoryOut(msgspec.Struct):
    """Every change at once: `next_cursor` is always null, kept for the one list shape. Each
    change's `by` is the API key that acted: its name, role and id."""

    campaign: str
    campaign_id: UUID
    items: list[CampaignChange]
    next_cursor: str | None
    links: dict[str, str]


class CampaignHistoryController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    exception_handlers = {SendsAsOtherTeams: sends_as_other_teams}

    @get(
        "/{campaign:str}/history",
        operation_id="getCampaignHistory",
        name="campaigns:history",
        guards=[allow(*READERS)],
        summary="Every change of a campaign, oldest first: who, when, why, and the status after",
        description=(
            "Read from the campaign's own events: `created`, `draft_edited`, "
            "`version_published` (with `migrated` when it moves enrolled customers), "
            "`activated`, `paused` (with its reason, if one was given), `resumed`, `archived` "
            "(with its reason). `by` is the API key that acted. A key limited to teams, of a "
            "campaign with a send step of another team in any version: 403."
        ),
    )
    @inject
    async def campaign_history(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key, or its id")],
        request: Request[Any, Any, Any],
        queries: FromDishka[CampaignHistoryQueries],
        campaigns: FromDishka[CampaignTeams],
    ) -> CampaignHistoryOut:
        await campaigns.check(campaign, teams_of_key(request))
        history = await queries.get(campaign)
        key = history.campaign.key
        return CampaignHistoryOut(
            key,
            history.campaign.campaign_id,
            history.changes,
            None,
            {"campaign": f"/v1/campaigns/{key}", "self": f"/v1/campaigns/{key}/history"},
        )
