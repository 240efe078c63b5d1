"""A customer's context: the short summary the inbox, routing and reply suggestions read."""

from __future__ import annotations

from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get

from application.queries.customer_context import ContextQueries, CustomerContext
from entrypoints.http.auth import allow
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
    )
    @inject
    async def get_customer_context(
        self, customer_id: UUID, queries: FromDishka[ContextQueries]
    ) -> CustomerContext:
        return await queries.of(customer_id)
