"""Send requests and the decisions they got."""

from __future__ import annotations

from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import ValidationException

from application.messages.request_message import RequestMessage
from application.queries.customers import CustomerQueries
from application.queries.decisions import DecisionQueries, DecisionView
from domain.customer.identities import IdentityNormalizer
from entrypoints.http.auth import allow
from entrypoints.http.schemas import MessageIn
from ports.api_keys import Role

__all__ = ["MessagesController"]


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
            "the first decision (`repeated: true`)."
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
        if data.customer_id is not None:
            customer_id = data.customer_id
        else:
            assert data.identity is not None
            customer_id = (await customers.by_identity(normalizer.parse(data.identity))).id
        decided = await send(
            customer_id,
            data.send_request(),
            idempotency_key=data.scoped_key(request.headers.get("idempotency-key")),
        )
        view = await decisions.by_id(decided.decision_id)
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
        self, decision_id: UUID, decisions: FromDishka[DecisionQueries]
    ) -> DecisionView:
        return await decisions.by_id(decision_id)
