"""A campaign's dry run: its journey played over the recorded history of a period, answering
who would have entered, where they would have gone and what the rules would have decided on
each send; nothing is sent or recorded (docs/campaign-dry-run.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, post
from litestar.params import Parameter

from application.campaigns.define_campaign import read_journey
from application.campaigns.dry_run import MAX_CUSTOMERS, DryRun, DryRunCampaign
from application.campaigns.teams import SendsAsOtherTeams, check_journey
from application.queries.campaign_teams import CampaignTeams
from domain.campaign.journey_reader import JourneyInvalid
from domain.shared.documents import field_of, json_fault
from domain.shared.times import time_fault
from entrypoints.http.auth import allow
from entrypoints.http.campaign_teams import sends_as_other_teams, teams_of_key
from entrypoints.http.campaign_text import text_faults, text_refusal
from entrypoints.http.problems import not_json, problem
from entrypoints.text_checks import number_fault, raw_fault
from ports.api_keys import Role
from ports.campaigns import JourneyReferences

if TYPE_CHECKING:
    from application.campaigns.dry_run import DryRunReport, SendTally

__all__ = ["CampaignDryRunController"]


class DryRunIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The period, a journey document to try instead of the campaign's, how many customers at
    most, and whether allowed sends count as delivered."""

    from_: datetime = msgspec.field(name="from")
    to: datetime
    journey: dict[str, Any] | None = None
    sample_limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_CUSTOMERS)] = 1_000
    assume_delivered: bool = True


_decoder = msgspec.json.Decoder(DryRunIn)


def _refused(field: str, reason: str) -> Response[Any]:
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        errors=[{"field": field, "reason": reason}],
    )


def _not_json(raw: bytes, reason: str) -> Response[Any]:
    """A body that is not JSON; one with a number too large to be finite (`1e400`) names its
    path, as the edge does for the routes it reads."""
    fault = number_fault(raw, reason)
    if fault is not None:
        return _refused(fault.path, fault.reason)
    return not_json(reason, raw)


def _sends(tally: SendTally) -> dict[str, Any]:
    return {
        "requested": tally.requested,
        "allowed": tally.allowed,
        "deferred": tally.deferred,
        "suppressed": tally.suppressed,
        "held": tally.held,
        "redecided": tally.redecided,
        "channels": dict(tally.channels.most_common()),
        "deferred_by": dict(tally.deferred_by.most_common()),
        "suppressed_by": dict(tally.suppressed_by.most_common()),
        "held_by": dict(tally.held_by.most_common()),
        "not_sent": dict(tally.not_sent.most_common()),
    }


def _out(report: DryRunReport) -> dict[str, Any]:
    sends = report.sends.values()
    return {
        "campaign": report.campaign,
        "version": report.version,
        "tried": report.tried,
        "period": {"from": report.since.isoformat(), "to": report.until.isoformat()},
        "entry": {
            "by": report.entry,
            "replayed": report.replayed,
            "not_replayed": report.not_replayed,
        },
        "customers": {"played": report.customers, "sample_full": report.sample_full},
        "entered": {
            "total": report.entered,
            "by": dict(report.entered_by.most_common()),
            "refused": dict(report.refused.most_common()),
        },
        "steps": {
            step: {"reached": tally.reached, "held": tally.held}
            for step, tally in report.steps.items()
        },
        "held_at_end": report.held(),
        "exits": dict(report.exits.most_common()),
        "conversions": report.conversions,
        "arms": {split: dict(arms.most_common()) for split, arms in report.arms.items()},
        "sends": {
            "requested": sum(t.requested for t in sends),
            "allowed": sum(t.allowed for t in sends),
            "deferred": sum(t.deferred for t in sends),
            "suppressed": sum(t.suppressed for t in sends),
            "held": sum(t.held for t in sends),
            "redecided": sum(t.redecided for t in sends),
            "by_step": {step: _sends(tally) for step, tally in report.sends.items()},
        },
        "faults": dict(report.faults.most_common()),
        "assumptions": report.assumptions,
    }


class CampaignDryRunController(Controller):
    path = "/v1/campaigns"
    tags = ["campaigns"]
    exception_handlers = {SendsAsOtherTeams: sends_as_other_teams}

    @post(
        "/{campaign:str}/dry-run",
        operation_id="dryRunCampaign",
        name="campaigns:dry-run",
        guards=[allow(Role.MARKETER)],
        status_code=200,
        summary="What the campaign's journey would have done over a recorded period",
        description=(
            'Body: `{"from": time, "to": time, "journey": <journey document, optional>, '
            '"sample_limit": 1000, "assume_delivered": true}`. The journey (the campaign\'s '
            "own, or the one given) is played over the signals and segment entries recorded in "
            "the period, in simulated time: entries by entry, steps reached and held at `to`, "
            "exits by reason, conversions, split arms, and each send rendered (the template "
            "version of that moment) and decided by the rules in force then on the customer as "
            "they were, without the campaign's own sends, by outcome and rule (a template that "
            "does not render is counted in `not_sent`). Nothing is sent or recorded; the answer "
            "lists what it assumed. A journey given and refused is a 422 "
            "`invalid-journey` naming each path; a period over 93 days or a time without an "
            "offset is a 422 naming the field. A key limited to teams, on a campaign with a "
            "send step of another team in any version, or with a journey given that has one: "
            "403 naming each step's `$.journey.steps.<step>.team`."
        ),
    )
    @inject
    async def dry_run_campaign(
        self,
        campaign: Annotated[str, Parameter(description="The campaign's key or id")],
        request: Request[Any, Any, Any],
        dry_run: FromDishka[DryRunCampaign],
        references: FromDishka[JourneyReferences],
        campaigns: FromDishka[CampaignTeams],
    ) -> Response[Any]:
        teams = teams_of_key(request)
        await campaigns.check(campaign, teams)
        raw = await request.body()
        fault = raw_fault(raw)
        if fault is not None:
            refused = text_faults(raw)
            if refused and isinstance(document := msgspec.json.decode(raw), dict):
                # every control character, and the journey's other faults with them
                return await text_refusal(refused, document.get("journey"), references)
            return _refused(fault.path, fault.reason)
        try:
            body = _decoder.decode(raw)
        except msgspec.ValidationError as error:
            if (broken := json_fault(raw)) is not None:
                return _not_json(raw, broken)
            return _refused(*field_of(error))
        except msgspec.DecodeError as error:
            return _not_json(raw, str(error))
        for name, value in (("from", body.from_), ("to", body.to)):
            fault_of_time = time_fault(value)
            if fault_of_time is not None:
                return problem(
                    422,
                    "invalid-value",
                    "A time is out of range" if value.tzinfo else "A time needs an offset",
                    errors=[{"field": f"$.{name}", "reason": fault_of_time}],
                )
        journey = None
        if body.journey is not None:
            try:
                journey = await read_journey(references, body.journey)
            except JourneyInvalid as invalid:
                return problem(
                    422,
                    "invalid-journey",
                    "The journey to try is not valid",
                    str(invalid),
                    errors=[{"field": f.path, "reason": f.reason} for f in invalid.faults],
                )
            check_journey(journey, teams)
        run = DryRun(body.from_, body.to, journey, body.sample_limit, body.assume_delivered)
        return Response(_out(await dry_run(campaign, run)), status_code=200)
