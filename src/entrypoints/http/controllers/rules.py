"""The rule set in force, and publishing a new version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post, put

from application.rules.publish_rules import PublishRules
from application.rules.simulate_rules import SimulateRules
from domain.policy.rule_document import RuleSetInvalid, channels_in_force, rule_set_document
from domain.policy.simulation import SimulationReport
from domain.shared.documents import field_of, json_fault
from domain.shared.times import time_fault
from entrypoints.http.auth import allow, current_key, every_team
from entrypoints.http.principal import principal_of
from entrypoints.http.problems import not_json, problem
from entrypoints.rules_schema import parse_rule_set
from entrypoints.text_checks import raw_fault
from ports.api_keys import Role
from ports.clock import Clock
from ports.rules import PublishedRules, RuleSets

__all__ = ["RulesController"]


def _out(published: PublishedRules) -> dict[str, Any]:
    return {
        "version": published.rules.version,
        "published_at": published.published_at.isoformat() if published.published_at else None,
        "author": published.author,
        "rules": rule_set_document(published.rules),
        # What each channel demands, named in the document or built in (docs/rules.md).
        "channels_in_force": channels_in_force(published.rules),
    }


class _SimulationIn(msgspec.Struct, forbid_unknown_fields=True):
    rules: msgspec.Raw
    since: datetime
    until: datetime | None = None
    max_examples: Annotated[int, msgspec.Meta(ge=0, le=200)] = 20


_simulation_decoder = msgspec.json.Decoder(_SimulationIn)


def _report(report: SimulationReport) -> dict[str, Any]:
    return {
        "decisions": report.decisions,
        "changed": report.changed,
        "by_outcome": dict(report.by_outcome.most_common()),
        "by_rule": dict(report.by_rule.most_common()),
        "examples": [
            {
                "decision_id": str(change.recorded.decision_id),
                "customer_id": str(change.recorded.customer_id),
                "at": change.recorded.at.isoformat(),
                "recorded": {
                    "outcome": change.recorded.outcome.value,
                    "channel": change.recorded.channel,
                    "rule_set_version": change.recorded.rule_set_version,
                },
                "draft": {
                    "outcome": change.simulated.outcome.value,
                    "channel": change.simulated.channel,
                    "defer_until": change.simulated.defer_until.isoformat()
                    if change.simulated.defer_until
                    else None,
                    "fired": [
                        {"rule_id": r.rule_id, "effect": r.effect.value, "reason": r.reason}
                        for r in change.simulated.fired
                    ],
                },
            }
            for change in report.examples
        ],
    }


class RulesController(Controller):
    path = "/v1/rules"
    tags = ["rules"]

    @get(
        operation_id="getRules",
        name="rules:get",
        guards=[allow(Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)],
        summary="The rule set in force, its version, who published it and when",
        description=(
            "`rules` is the document as published; `channels_in_force` is every channel's "
            "policy as decisions apply it, every field written out: the built-in policy with "
            "the fields the document gives for a channel it names, the built-in policy for "
            "one it leaves out (docs/rules.md)."
        ),
    )
    @inject
    async def get_rules(self, rule_sets: FromDishka[RuleSets]) -> dict[str, Any]:
        return _out(await rule_sets.latest())

    @post(
        "/simulate",
        operation_id="simulateRules",
        name="rules:simulate",
        guards=[allow(Role.MARKETER, Role.AUDITOR)],
        status_code=200,
        summary="What a draft rule set would have decided on the recorded requests of a period",
        description=(
            'Body: `{"rules": <rule document>, "since": time, "until": time (default now), '
            '"max_examples": 20}`. Each recorded decision is decided again on the customer as '
            "they were at that moment; the answer counts changed decisions by outcome and by "
            "rule, with examples. Nothing is written. A key limited to teams replays only its "
            "teams' decisions."
        ),
    )
    @inject
    async def simulate_rules(
        self,
        request: Request[Any, Any, Any],
        simulate: FromDishka[SimulateRules],
        clock: FromDishka[Clock],
    ) -> Response[Any]:
        raw = await request.body()
        fault = raw_fault(raw)
        if fault is not None:
            return problem(
                400,
                "invalid-request",
                "The request is not valid",
                errors=[{"field": fault.path, "reason": fault.reason}],
            )
        try:
            body = _simulation_decoder.decode(raw)
        except msgspec.ValidationError as error:
            if (broken := json_fault(raw)) is not None:
                return not_json(broken)
            field, reason = field_of(error)
            return problem(
                400,
                "invalid-request",
                "The request is not valid",
                errors=[{"field": field, "reason": reason}],
            )
        except msgspec.DecodeError as error:
            return not_json(str(error), raw)
        try:
            draft = parse_rule_set(bytes(body.rules), version=0)
        except RuleSetInvalid as invalid:
            return problem(
                422,
                "invalid-rules",
                "The draft rule set is not valid",
                errors=[
                    {"field": "$.rules" + e.path[1:], "reason": e.reason} for e in invalid.errors
                ],
            )
        until = body.until or clock.now()
        for name, value in (("since", body.since), ("until", until)):
            fault_of_time = time_fault(value)
            if fault_of_time is not None:
                return problem(
                    422,
                    "invalid-value",
                    "A time is out of range" if value.tzinfo else "A time needs an offset",
                    errors=[{"field": f"$.{name}", "reason": fault_of_time}],
                )
        scope = (await principal_of(request)).team_scope
        report = await simulate(
            draft, body.since, until, max_examples=body.max_examples, scope=scope
        )
        return Response(_report(report), status_code=200)

    @put(
        operation_id="publishRules",
        name="rules:publish",
        guards=[allow(Role.MARKETER), every_team("the rule set")],
        status_code=200,
        summary="Publish a rule set as the next version (the body is the rule document, docs/rules.md)",
        description=(
            "The rule set holds every team's quiet hours, caps, dedup and approvals, so a key "
            "limited to teams may not publish it: 403 (it may simulate a draft on its teams' "
            "decisions)."
        ),
    )
    @inject
    async def publish_rules(
        self, request: Request[Any, Any, Any], publish: FromDishka[PublishRules]
    ) -> Response[Any]:
        try:
            rules = parse_rule_set(await request.body(), version=0)
        except RuleSetInvalid as invalid:
            return problem(
                422,
                "invalid-rules",
                "The rule set is not valid",
                f"{len(invalid.errors)} problem(s); nothing was published",
                errors=[{"field": e.path, "reason": e.reason} for e in invalid.errors],
            )
        key = current_key(request)
        published = await publish(rules, author=f"{key.name} ({key.role.value} key {key.id})")
        return Response(_out(published), status_code=200)
