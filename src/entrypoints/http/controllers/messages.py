"""Send requests and the decisions they got."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import structlog
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from application.messages.request_message import RequestMessage
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries, DecisionView
from application.queries.messages import CostReport, MessageQueries, MessageView
from domain.customer.identities import IdentityNormalizer
from domain.message.origin import api_origin
from domain.shared.times import time_fault
from entrypoints.http.auth import allow, check_team, current_key
from entrypoints.http.idempotency import idempotency_key
from entrypoints.http.principal import principal_of
from entrypoints.http.schemas import MessageIn
from entrypoints.text_checks import InputRefused, TextFault
from ports.api_keys import Role
from ports.clock import Clock

__all__ = ["MessagesController"]

_log = structlog.get_logger("chorus.messages")

_GROUPS = ("channel", "provider", "team", "campaign")


class MessagesController(Controller):
    tags = ["messages"]

    @post(
        "/v1/messages",
        operation_id="requestMessage",
        name="messages:request",
        guards=[allow(Role.SERVICE, Role.MARKETER, Role.AGENT)],
        status_code=200,
        summary="Request a send; answers with the recorded decision",
        description=(
            "The decision is send, reroute (to another of the requested channels), defer (until "
            "`defer_until`) or suppress, with every rule that fired. Idempotent by the "
            "`Idempotency-Key` header or `idempotency_key` field, per team: a retry answers with "
            "the first decision (`repeated: true`). With `template` or `content` an allowed "
            "message is rendered now (a missing variable, or a render over budget, is a 422 "
            "`render-error`) and sent through the "
            "outbox; follow it at `GET /v1/messages/{message_id}`."
        ),
    )
    @inject
    async def request_message(
        self,
        data: MessageIn,
        request: Request,  # type: ignore[type-arg]
        send: FromDishka[RequestMessage],
        customers: FromDishka[CustomerQueries],
        normalizer: FromDishka[IdentityNormalizer],
        decisions: FromDishka[DecisionQueries],
    ) -> Response[DecisionView]:
        if (data.customer_id is None) == (data.identity is None):
            raise ValidationException(
                "give customer_id or identity",
                extra=[{"message": "exactly one of customer_id and identity - at `$.customer_id`"}],
            )
        check_team(request, data.team)
        key = idempotency_key(request, data.idempotency_key)
        if data.customer_id is not None:
            customer_id = data.customer_id
        else:
            assert data.identity is not None
            customer_id = (await customers.by_identity(normalizer.parse(data.identity))).id
        decided = await send(
            customer_id,
            data.send_request(),
            idempotency_key=data.scoped_key(key),
            origin=api_origin(current_key(request).id),
            content=data.message_content(request.scope.get("state", {}).get("correlation_id")),
        )
        view = await decisions.by_id(decided.decision_id)
        _log.info(
            "message requested",
            message_id=str(decided.message_id),
            decision_id=str(decided.decision_id),
            outcome=view.outcome,
            channel=view.channel,
            repeated=decided.repeated,
        )
        return Response(
            view, status_code=200, headers={"Chorus-Repeated": str(decided.repeated).lower()}
        )

    @get(
        "/v1/decisions/{decision_id:uuid}",
        operation_id="getDecision",
        name="decisions:get",
        guards=[allow(Role.SERVICE, Role.MARKETER, Role.AGENT, Role.AUDITOR)],
        summary="A decision as recorded: outcome, channel, rule-set version, every rule that fired",
    )
    @inject
    async def get_decision(
        self,
        decision_id: UUID,
        request: Request,  # type: ignore[type-arg]
        decisions: FromDishka[DecisionQueries],
    ) -> DecisionView:
        view = await decisions.by_id(decision_id)
        check_team(request, view.request.get("team"))
        return view

    @get(
        "/v1/messages/{message_id:uuid}",
        operation_id="getMessage",
        name="messages:get",
        guards=[allow(Role.SERVICE, Role.MARKETER, Role.AGENT, Role.AUDITOR)],
        summary="A message's trace: decisions, provider attempts, statuses, cost",
    )
    @inject
    async def get_message(
        self,
        message_id: UUID,
        request: Request,  # type: ignore[type-arg]
        messages: FromDishka[MessageQueries],
    ) -> MessageView:
        view = await messages.by_id(message_id)
        check_team(request, view.team)
        return view

    @get(
        "/v1/reports/costs",
        operation_id="getCostReport",
        name="reports:costs",
        guards=[allow(Role.MARKETER, Role.AUDITOR)],
        summary="Cost and count of messages by channel, provider, team and campaign over a period",
        description=(
            "Messages queued in [since, until) (default: the last 30 days), grouped by the "
            "comma-separated `group_by` (default `channel,provider`), one line per group and "
            "currency, with counts by status. Totals are per currency. A key limited to teams "
            "counts only its teams' messages; `team` keeps one team's (another team's: 403)."
        ),
    )
    @inject
    async def cost_report(
        self,
        request: Request,  # type: ignore[type-arg]
        messages: FromDishka[MessageQueries],
        clock: FromDishka[Clock],
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: Annotated[str, Parameter(pattern=r"^[a-z]+(,[a-z]+)*$")] = "channel,provider",
        team: Annotated[str | None, Parameter(min_length=1, max_length=64)] = None,
    ) -> CostReport:
        groups = group_by.split(",")
        unknown = [g for g in groups if g not in _GROUPS]
        if unknown:
            choices = ", ".join(_GROUPS)
            refused = f"cannot group by {', '.join(unknown)}; choose from {choices}"
            raise InputRefused(TextFault("query.group_by", refused))
        for name, value in (("since", since), ("until", until)):
            reason = None if value is None else time_fault(value)
            if reason is not None:
                raise ValidationException(
                    f"{name} {reason}", extra=[{"message": reason, "key": name, "source": "query"}]
                )
        if team is None:
            teams = (await principal_of(request)).team_scope.sends
        else:
            check_team(request, team)
            teams = frozenset({team})
        end = until or clock.now() + timedelta(seconds=1)
        start = since or end - timedelta(days=30)
        return await messages.costs(start, end, groups, teams)
