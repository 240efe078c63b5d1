"""A campaign's history: every change of its status and every version, who made it, when, why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get
from litestar.params import Parameter

from application.queries.campaign_history import CampaignChange, CampaignHistoryQueries
from domain.campaign.aggregate import CampaignStatus
from entrypoints.http.auth import READERS, allow

__all__ = ["CampaignHistoryController"]


class CampaignChangeOut(msgspec.Struct):
    """`by` is the API key that acted: its name, role and id."""

    change: str
    at: datetime
    by: str
    status: CampaignStatus
    version: int
    reason: str | None
    name: str | None
    migrated: bool


class CampaignHistoryOut(msgspec.Struct):
    campaign: str
    campaign_id: UUID
    changes: list[CampaignChangeOut]
    links: dict[str, str]


def _out(change: CampaignChange) -> CampaignChangeOut:
    return CampaignChangeOut(
        change.change,
        change.at,
        change.by,
        change.status,
        change.version,
        change.reason,
        change.name,
        change.migrated,
    )


class CampaignHistoryController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]

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
            "(with its reason). `by` is the API key that acted."
        ),
    )
    @inject
    async def campaign_history(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key, or its id")],
        queries: FromDishka[CampaignHistoryQueries],
    ) -> CampaignHistoryOut:
        history = await queries.get(campaign)
        key = history.campaign.key
        return CampaignHistoryOut(
            key,
            history.campaign.campaign_id,
            [_out(change) for change in history.changes],
            {"campaign": f"/v1/campaigns/{key}", "self": f"/v1/campaigns/{key}/history"},
        )
