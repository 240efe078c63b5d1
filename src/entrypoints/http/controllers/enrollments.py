"""Enrollments: enter a customer into a campaign through the API, list a campaign's enrollments,
and see which journeys a customer is in, at which step and why.

The lists read the enrollments projection, which follows the log: an entry just made shows once
the campaign process has begun it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from application.campaigns.teams import SendsAsOtherTeams
from application.enrollments.enroll_customer import EnrollCustomer, EnrollmentRefused
from application.idempotent_writes import IdempotentWrites
from application.queries.campaign_teams import CampaignTeams
from application.queries.enrollments import EnrollmentQueries
from entrypoints.http.auth import READERS, allow
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key
from entrypoints.http.idempotency import KEY_MAX_LENGTH, answer_once, idempotency_key
from entrypoints.http.problems import bad_cursor, problem
from ports.api_keys import Role
from ports.enrollments import EnrollmentStatus, EnrollmentView, InvalidEnrollmentCursor

__all__ = ["EnrollmentsController"]

IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_MAX_LENGTH)]


class EnrollmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """The customer to enter; `idempotency_key` is the `Idempotency-Key` header's twin."""

    customer_id: UUID
    idempotency_key: IdempotencyKey | None = None


class EnrolledOut(msgspec.Struct):
    id: UUID
    campaign: str
    campaign_id: UUID
    customer_id: UUID
    created: bool
    links: dict[str, str]


class EnrollmentOut(msgspec.Struct):
    """One entry: the step it is at and the reason it went there, what it waits for (a signal,
    or `time`, or `delivery`) until when, and how it ended."""

    id: UUID
    campaign: str | None
    campaign_id: UUID
    campaign_version: int
    customer_id: UUID
    entry: int
    source: str
    status: EnrollmentStatus
    step: str | None
    reason: str | None
    waiting_for: str | None
    waiting_until: datetime | None
    entered_at: datetime
    updated_at: datetime
    converted_at: datetime | None
    exited_at: datetime | None
    exit_reason: str | None


class EnrollmentsOut(msgspec.Struct):
    campaign: str
    campaign_id: UUID
    items: list[EnrollmentOut]
    next_cursor: str | None


class CustomerCampaignsOut(msgspec.Struct):
    """Every entry at once: `next_cursor` is always null, kept for the one list shape."""

    customer_id: UUID
    items: list[EnrollmentOut]
    next_cursor: str | None


def _out(view: EnrollmentView, campaign: str | None) -> EnrollmentOut:
    return EnrollmentOut(
        view.enrollment_id,
        campaign,
        view.campaign_id,
        view.campaign_version,
        view.customer_id,
        view.entry,
        view.source,
        view.status,
        view.step,
        view.reason,
        view.waiting_for,
        view.waiting_until,
        view.entered_at,
        view.updated_at,
        view.converted_at,
        view.exited_at,
        view.exit_reason,
    )


def _refused(request: Request[Any, Any, Any], exc: EnrollmentRefused) -> Response[Any]:
    return problem(
        409,
        "enrollment-refused",
        "The campaign does not let the customer in now",
        str(exc),
        errors=[{"field": "customer_id", "reason": str(exc)}],
    )


_REF = "The campaign's key, or its id"


class EnrollmentsController(Controller):
    path = "/v1"
    tags = ["campaigns"]
    exception_handlers = {
        EnrollmentRefused: _refused,
        InvalidEnrollmentCursor: bad_cursor,
        SendsAsOtherTeams: sends_as_other_teams,
    }

    @post(
        "/campaigns/{campaign:str}/enrollments",
        operation_id="enrollCustomer",
        name="campaigns:enroll",
        guards=[allow(Role.MARKETER)],
        status_code=201,
        summary="Enter a customer into an active campaign whose entry is the API",
        description=(
            "Body: `{customer_id}`. 201 with the new entry; the campaign process then begins the "
            "journey. With an `Idempotency-Key` header (or `idempotency_key` field), a retry is "
            "answered as the first request was (`Chorus-Repeated: true`), and the key with "
            "another customer is a 409 `idempotency-key-reused`. A campaign not active or "
            "not entered through the API, or a customer its policies keep out (still in the "
            "journey, entered once already, cooling down, the cap reached): 409 "
            "`enrollment-refused` with the reason. No such campaign or customer: 404. A key "
            "limited to teams, into a campaign with a send step of another team in any "
            "version: 403 naming each step's `$.journey.steps.<step>.team`."
        ),
    )
    @inject
    async def enroll_customer(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        data: EnrollmentIn,
        request: Request[Any, Any, Any],
        enroll: FromDishka[EnrollCustomer],
        campaigns: FromDishka[CampaignTeams],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[EnrolledOut]:
        summary = (await campaigns.get(campaign, teams_of_key(request))).summary
        key = idempotency_key(request, data.idempotency_key)

        async def write() -> tuple[int, EnrolledOut]:
            made = await enroll.enter(summary.campaign_id, data.customer_id, key)
            out = EnrolledOut(
                made.enrollment_id,
                summary.key,
                summary.campaign_id,
                data.customer_id,
                made.created,
                {
                    "enrollments": f"/v1/campaigns/{summary.key}/enrollments",
                    "customer": f"/v1/customers/{data.customer_id}/campaigns",
                    "self": f"/v1/campaigns/{summary.key}/enrollments/{made.enrollment_id}",
                },
            )
            return 201 if made.created else 200, out

        # What is asked is the customer: the key is not part of it, wherever it came from.
        asked = {"customer_id": data.customer_id}
        return await answer_once(request, writes, asked, EnrolledOut, write, key=key)

    @get(
        "/campaigns/{campaign:str}/enrollments",
        operation_id="listCampaignEnrollments",
        name="campaigns:enrollments",
        guards=[allow(*READERS)],
        summary="A campaign's enrollments, newest entry first, a page at a time",
        description=(
            "`?status=` (active, exited, converted), `?step=` (where they are now), `?limit=` "
            "(1-1000, default 100) and `?after=` the previous `next_cursor`. A key limited to "
            "teams, of a campaign with a send step of another team: 403."
        ),
    )
    @inject
    async def list_enrollments(
        self,
        campaign: Annotated[str, Parameter(description=_REF)],
        request: Request[Any, Any, Any],
        queries: FromDishka[EnrollmentQueries],
        campaigns: FromDishka[CampaignTeams],
        status: EnrollmentStatus | None = None,
        step: Annotated[str | None, Parameter(max_length=200)] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> EnrollmentsOut:
        await campaigns.check(campaign, teams_of_key(request))
        found = await queries.of_campaign(
            campaign, status=status, step=step, after=after, limit=limit
        )
        key = found.campaign.key
        items = [_out(view, key) for view in found.page.items]
        return EnrollmentsOut(key, found.campaign.campaign_id, items, found.page.next_cursor)

    @get(
        "/customers/{customer_id:uuid}/campaigns",
        operation_id="listCustomerCampaigns",
        name="customers:campaigns",
        guards=[allow(*READERS)],
        summary="The journeys a customer is or was in: at which step, why, and how each ended",
        description="Newest entry first; `status` active is a journey they are in now.",
    )
    @inject
    async def customer_campaigns(
        self, customer_id: UUID, queries: FromDishka[EnrollmentQueries]
    ) -> CustomerCampaignsOut:
        journeys = await queries.of_customer(customer_id)
        items = [
            _out(j.enrollment, None if j.campaign is None else j.campaign.key) for j in journeys
        ]
        return CustomerCampaignsOut(customer_id, items, None)
