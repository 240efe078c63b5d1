"""Campaigns: define journeys as drafts, publish versions, and take campaigns through their life.

A campaign is named in a path by its key or its id. Every write is harmless to repeat: the same
draft, edit or change of status again records nothing and answers the campaign as it is; with an
`Idempotency-Key`, a retry is answered as the first request was, and the key with another
request is a 409.

A key limited to teams reads and acts on only the campaigns whose every version sends as its
teams alone, and writes only journeys that do (docs/campaigns.md, Teams): anything else is a
403 naming each send step of another team.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from application.campaigns.change_status import ChangeCampaignStatus, StatusChange
from application.campaigns.define_campaign import (
    CampaignDraft,
    CampaignExists,
    CreateCampaign,
    EditCampaign,
)
from application.campaigns.teams import SendsAsOtherTeams
from application.idempotent_writes import IdempotentWrites
from application.queries.campaign_teams import CampaignTeams
from application.queries.campaigns import CampaignQueries
from domain.campaign.aggregate import CampaignStatus, CannotChange
from domain.campaign.journey_reader import JourneyInvalid
from entrypoints.http.auth import READERS, allow, author
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key
from entrypoints.http.campaign_text import (
    READS_TEXT_FAULTS,
    CampaignRequest,
    refused_text,
    text_refusal,
    validation_with_text,
)
from entrypoints.http.idempotency import answer_once
from entrypoints.http.keys import Key, Name
from entrypoints.http.problems import problem
from ports.api_keys import Role
from ports.campaigns import CampaignDetail, CampaignSummary, JourneyReferences

__all__ = ["CampaignsController"]

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True):
    """A campaign's name and its journey (the document of `domain/campaign/journey.py`)."""

    name: Name
    journey: dict[str, Any]


class NewCampaignIn(CampaignIn, forbid_unknown_fields=True, kw_only=True):
    key: Key


class CampaignEditIn(CampaignIn, forbid_unknown_fields=True, kw_only=True):
    """`migration` moves customers enrolled in earlier versions to steps of the new one:
    `{"moves": [{"from": step, "to": step, "from_version": n}]}`."""

    migration: dict[str, Any] | None = None


class ArchiveIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class PauseIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why the campaign is paused, recorded with the pause; optional."""

    reason: Reason | None = None


class VersionOut(msgspec.Struct):
    version: int
    at: datetime
    by: str


class CampaignSummaryOut(msgspec.Struct):
    key: str
    id: UUID
    name: str
    status: CampaignStatus
    version: int
    updated_at: datetime
    links: dict[str, str]


class CampaignOut(msgspec.Struct):
    key: str
    id: UUID
    name: str
    status: CampaignStatus
    version: int
    journey: dict[str, Any]
    versions: list[VersionOut]
    updated_at: datetime
    links: dict[str, str]


class CampaignsOut(msgspec.Struct):
    items: list[CampaignSummaryOut]
    next_cursor: str | None


def _links(key: str) -> dict[str, str]:
    return {"self": f"/v1/campaigns/{key}"}


def _summary_out(summary: CampaignSummary) -> CampaignSummaryOut:
    return CampaignSummaryOut(
        summary.key,
        summary.campaign_id,
        summary.name,
        summary.status,
        summary.version,
        summary.updated_at,
        _links(summary.key),
    )


def _out(detail: CampaignDetail) -> CampaignOut:
    summary = detail.summary
    return CampaignOut(
        summary.key,
        summary.campaign_id,
        summary.name,
        summary.status,
        summary.version,
        detail.journey,
        [VersionOut(v.version, v.at, v.by) for v in detail.versions],
        summary.updated_at,
        _links(summary.key),
    )


async def _written(
    queries: CampaignQueries, campaign_id: UUID, status_code: int = 200
) -> tuple[int, CampaignOut]:
    """The campaign as written: its listing commits with its events."""
    return status_code, _out(await queries.get(str(campaign_id)))


async def _change(
    request: Request[Any, Any, Any],
    campaign: str,
    change: StatusChange,
    asked: msgspec.Struct | None,
    reason: str | None,
    status: ChangeCampaignStatus,
    queries: CampaignQueries,
    writes: IdempotentWrites,
) -> Response[CampaignOut]:
    """The four changes of status are one write: answered once per idempotency key."""

    async def write() -> tuple[int, CampaignOut]:
        written = await status(campaign, change, author(request), reason, teams_of_key(request))
        return await _written(queries, written.campaign_id)

    return await answer_once(request, writes, asked, CampaignOut, write)


def _invalid(request: Request[Any, Any, Any], exc: JourneyInvalid) -> Response[Any]:
    return problem(
        422,
        "invalid-journey",
        "The campaign's journey or migration is not valid",
        str(exc),
        errors=[{"field": fault.path, "reason": fault.reason} for fault in exc.faults],
    )


def _exists(request: Request[Any, Any, Any], exc: CampaignExists) -> Response[Any]:
    return problem(409, "campaign-exists", "A campaign with that key exists", str(exc))


def _cannot(request: Request[Any, Any, Any], exc: CannotChange) -> Response[Any]:
    return problem(
        409,
        "campaign-status",
        "The campaign's status does not allow that",
        str(exc),
        campaign_status=str(exc.status),
    )


_REF = "The campaign's key, or its id"
_KEYED = (
    " With an `Idempotency-Key` header, a retry is answered as the first request was "
    "(`Chorus-Repeated: true`); the key with another request: 409 `idempotency-key-reused`."
)
_TEAMS = (
    " A key limited to teams, on a campaign with a send step of another team in any version: "
    "403, naming each step's `$.journey.steps.<step>.team`."
)


class CampaignsController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    request_class = CampaignRequest
    exception_handlers = {
        ValidationException: validation_with_text,
        JourneyInvalid: _invalid,
        CampaignExists: _exists,
        CannotChange: _cannot,
        SendsAsOtherTeams: sends_as_other_teams,
    }

    @post(
        operation_id="createCampaign",
        name="campaigns:create",
        opt={READS_TEXT_FAULTS: True},
        guards=[allow(Role.MARKETER)],
        status_code=201,
        summary="Create a campaign as a draft; nobody enters it until it is activated",
        description=(
            "Body: `{key, name, journey}`. The journey is checked whole, against the templates "
            "published and the segments defined: a 422 `invalid-journey` names the path of "
            "every fault (`$.journey.steps.welcome.template`) and nothing is stored. 201 when "
            "created; 200 when the key holds this very draft already (a retry); 409 when it "
            "holds another (PUT /v1/campaigns/{campaign} changes it). A key limited to teams, "
            "with a send step of another team: 403 naming its `$.journey.steps.<step>.team`."
            + _KEYED
        ),
    )
    @inject
    async def create_campaign(
        self,
        data: NewCampaignIn,
        request: Request[Any, Any, Any],
        create: FromDishka[CreateCampaign],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
        references: FromDishka[JourneyReferences],
    ) -> Response[CampaignOut]:
        if refused := refused_text(request):
            return await text_refusal(refused, data.journey, references)

        async def write() -> tuple[int, CampaignOut]:
            draft = CampaignDraft(data.name, data.journey)
            written = await create(data.key, draft, author(request), teams_of_key(request))
            return await _written(queries, written.campaign_id, 201 if written.created else 200)

        return await answer_once(request, writes, data, CampaignOut, write)

    @get(
        operation_id="listCampaigns",
        name="campaigns:list",
        guards=[allow(*READERS)],
        summary="Campaigns by key, of one status if asked, a page at a time",
        description=(
            "`?status=` (draft, active, paused, archived), `?limit=` (1-1000, default 100) and "
            "`?after=` the previous `next_cursor`. A key limited to teams lists the campaigns "
            "whose every version sends as its teams alone."
        ),
    )
    @inject
    async def list_campaigns(
        self,
        request: Request[Any, Any, Any],
        campaigns: FromDishka[CampaignTeams],
        status: CampaignStatus | None = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> CampaignsOut:
        teams = teams_of_key(request)
        page = await campaigns.list(teams, status=status, after=after, limit=limit)
        return CampaignsOut([_summary_out(s) for s in page.items], page.next_cursor)

    @get(
        "/{campaign:str}",
        operation_id="getCampaign",
        name="campaigns:get",
        guards=[allow(*READERS)],
        summary="A campaign: its status, the journey in force, and who wrote each version when",
        description=_TEAMS.strip(),
    )
    @inject
    async def get_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        request: Request[Any, Any, Any],
        campaigns: FromDishka[CampaignTeams],
    ) -> CampaignOut:
        return _out(await campaigns.get(campaign, teams_of_key(request)))

    @put(
        "/{campaign:str}",
        operation_id="editCampaign",
        name="campaigns:edit",
        opt={READS_TEXT_FAULTS: True},
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="Edit a campaign: a draft in place; a live one publishes a new version",
        description=(
            "Body: `{name, journey, migration}`. Customers already enrolled finish on their "
            'version, unless `migration` moves them: `{"moves": [{"from": step, "to": '
            'step, "from_version": n}]}` (`from_version` left out: any earlier version). '
            "A journey or migration refused is a 422 `invalid-journey` naming each path, and "
            "nothing is stored; an archived campaign is a 409 `campaign-status`. A key "
            "limited to teams, on a campaign with a send step of another team in any version, "
            "or writing a journey with one: 403 naming each `$.journey.steps.<step>.team`." + _KEYED
        ),
    )
    @inject
    async def edit_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        data: CampaignEditIn,
        request: Request[Any, Any, Any],
        edit: FromDishka[EditCampaign],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
        references: FromDishka[JourneyReferences],
    ) -> Response[CampaignOut]:
        if refused := refused_text(request):
            return await text_refusal(refused, data.journey, references)
        draft = CampaignDraft(data.name, data.journey)

        async def write() -> tuple[int, CampaignOut]:
            by = author(request)
            written = await edit(campaign, draft, by, data.migration, teams_of_key(request))
            return await _written(queries, written.campaign_id)

        return await answer_once(request, writes, data, CampaignOut, write)

    @post(
        "/{campaign:str}/activate",
        operation_id="activateCampaign",
        name="campaigns:activate",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="A draft goes live: customers may enter its version in force",
        description="Already active: nothing changes. A paused or archived one: 409."
        + _TEAMS
        + _KEYED,
    )
    @inject
    async def activate_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        request: Request[Any, Any, Any],
        status: FromDishka[ChangeCampaignStatus],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[CampaignOut]:
        change = StatusChange.ACTIVATE
        return await _change(request, campaign, change, None, None, status, queries, writes)

    @post(
        "/{campaign:str}/pause",
        operation_id="pauseCampaign",
        name="campaigns:pause",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="Hold every enrollment of an active campaign, and take nobody new",
        description=(
            "Body, optional: `{reason}`, recorded with the pause (GET "
            "/v1/campaigns/{campaign}/history). Already paused: nothing changes. A draft or "
            "archived one: 409." + _TEAMS + _KEYED
        ),
    )
    @inject
    async def pause_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        request: Request[Any, Any, Any],
        status: FromDishka[ChangeCampaignStatus],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
        data: PauseIn | None = None,
    ) -> Response[CampaignOut]:
        reason = None if data is None else data.reason
        change = StatusChange.PAUSE
        return await _change(request, campaign, change, data, reason, status, queries, writes)

    @post(
        "/{campaign:str}/resume",
        operation_id="resumeCampaign",
        name="campaigns:resume",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="A paused campaign continues its enrollments",
        description="Already active: nothing changes. A draft or archived one: 409."
        + _TEAMS
        + _KEYED,
    )
    @inject
    async def resume_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        request: Request[Any, Any, Any],
        status: FromDishka[ChangeCampaignStatus],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[CampaignOut]:
        change = StatusChange.RESUME
        return await _change(request, campaign, change, None, None, status, queries, writes)

    @post(
        "/{campaign:str}/archive",
        operation_id="archiveCampaign",
        name="campaigns:archive",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="End a campaign for good: every enrollment exits with the reason",
        description="Body: `{reason}`. Already archived: nothing changes." + _TEAMS + _KEYED,
    )
    @inject
    async def archive_campaign(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        data: ArchiveIn,
        request: Request[Any, Any, Any],
        status: FromDishka[ChangeCampaignStatus],
        queries: FromDishka[CampaignQueries],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[CampaignOut]:
        change = StatusChange.ARCHIVE
        return await _change(request, campaign, change, data, data.reason, status, queries, writes)
