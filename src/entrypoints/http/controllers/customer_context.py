"""A customer's context: the short summary the inbox, routing and reply suggestions read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, get

from application.queries.customer_context import ContextQueries, CustomerContext
from entrypoints.http.auth import allow
from entrypoints.http.principal import principal_of
from ports.api_keys import Role

__all__ = ["CustomerContextController"]

# Whoever may read the customer (GET /v1/customers/{id}) may read their context.
_READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)


class CustomerContextController(Controller):
    path = "/v1/customers"
    tags = ["customers"]

    @get(
        "/{customer_id:uuid}/context",
        operation_id="getCustomerContext",
        name="customers:context",
        guards=[allow(*_READERS)],
        summary="Who the customer is, what they did lately, their open conversations and the "
        "last decisions about them, with why; a merged id answers for the survivor",
        description=(
            "A key limited to teams gets only its teams' decisions, and the conversations it "
            "sees in the inbox; the profile, signals, segments and journeys are everyone's."
        ),
    )
    @inject
    async def get_customer_context(
        self,
        customer_id: UUID,
        request: Request[Any, Any, Any],
        queries: FromDishka[ContextQueries],
    ) -> CustomerContext:
        return await queries.of(customer_id, (await principal_of(request)).team_scope)
