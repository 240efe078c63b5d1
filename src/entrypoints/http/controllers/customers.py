"""Customers: read by id or identity, upsert by identity, timeline."""

from __future__ import annotations

import base64
from typing import Annotated
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, get, post, put
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.upsert_customer import UpsertCustomer
from application.queries.customers import CustomerQueries, CustomerView
from domain.customer.contact import ConsentRecord
from domain.customer.identities import IdentityClaim, IdentityNormalizer
from domain.customer.profile import Profile, check_attributes
from entrypoints.http.auth import allow
from entrypoints.http.schemas import (
    ConsentsIn,
    ConsentsOut,
    CustomerUpsertIn,
    CustomerUpsertOut,
    SuppressionIn,
    SuppressionOut,
    TimelineItemOut,
    TimelineOut,
)
from ports.api_keys import Role

__all__ = ["CustomersController"]

_READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)


def _cursor(position: int | None) -> str | None:
    return None if position is None else base64.urlsafe_b64encode(str(position).encode()).decode()


def _position(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError:
        raise ValidationException(
            "bad cursor",
            extra=[{"key": "cursor", "source": "query", "message": "not a cursor from this API"}],
        ) from None


class CustomersController(Controller):
    path = "/v1/customers"
    tags = ["customers"]

    @get(
        "/{customer_id:uuid}",
        operation_id="getCustomer",
        name="customers:get",
        guards=[allow(*_READERS)],
        summary="A customer's profile; a merged id answers with the survivor",
    )
    @inject
    async def get_customer(
        self, customer_id: UUID, queries: FromDishka[CustomerQueries]
    ) -> CustomerView:
        return await queries.by_id(customer_id)

    @get(
        operation_id="findCustomer",
        name="customers:find",
        guards=[allow(*_READERS)],
        summary="The customer an identity belongs to: ?identity=email:ana@example.org",
    )
    @inject
    async def find_customer(
        self,
        identity: Annotated[str, Parameter(description="TYPE:VALUE, e.g. phone:+442079460958")],
        queries: FromDishka[CustomerQueries],
        normalizer: FromDishka[IdentityNormalizer],
    ) -> CustomerView:
        return await queries.by_identity(normalizer.parse(identity))

    @put(
        operation_id="upsertCustomer",
        name="customers:upsert",
        guards=[allow(Role.SERVICE, Role.AGENT, Role.MARKETER)],
        status_code=200,
        summary="Create or update the customer these identities name, merging if they disagree",
    )
    @inject
    async def upsert_customer(
        self,
        data: CustomerUpsertIn,
        upsert: FromDishka[UpsertCustomer],
        queries: FromDishka[CustomerQueries],
        normalizer: FromDishka[IdentityNormalizer],
    ) -> CustomerUpsertOut:
        claims = tuple(
            IdentityClaim(normalizer.normalize(i.type, i.value), i.verification)
            for i in data.identities
        )
        profile = data.profile.changes() if data.profile else {}
        Profile().merged_with(profile)
        check_attributes(data.attributes)
        done = await upsert(claims, profile, dict(data.attributes))
        return CustomerUpsertOut(
            done.created, list(done.merged), await queries.by_id(done.customer_id)
        )

    @post(
        "/{customer_id:uuid}/consents",
        operation_id="changeConsents",
        name="customers:consents",
        guards=[allow(Role.SERVICE, Role.AGENT, Role.MARKETER)],
        status_code=200,
        summary="Record consent grants and withdrawals with their proof; they apply at once",
    )
    @inject
    async def change_consents(
        self,
        customer_id: UUID,
        data: ConsentsIn,
        change: FromDishka[ChangeConsent],
        queries: FromDishka[CustomerQueries],
    ) -> ConsentsOut:
        changed = await change(
            customer_id,
            [ConsentRecord(c.channel, c.purpose, c.granted, c.source) for c in data.changes],
        )
        return ConsentsOut(changed, await queries.by_id(customer_id))

    @post(
        "/{customer_id:uuid}/suppressions",
        operation_id="changeSuppression",
        name="customers:suppressions",
        guards=[allow(Role.SERVICE, Role.AGENT, Role.MARKETER)],
        status_code=200,
        summary="Put a channel (or every channel) on the suppression list, or take it off",
    )
    @inject
    async def change_suppression(
        self,
        customer_id: UUID,
        data: SuppressionIn,
        change: FromDishka[ChangeSuppression],
        queries: FromDishka[CustomerQueries],
    ) -> SuppressionOut:
        changed = await change(customer_id, data.channel, data.reason, active=data.active)
        return SuppressionOut(changed, await queries.by_id(customer_id))

    @get(
        "/{customer_id:uuid}/timeline",
        operation_id="getCustomerTimeline",
        name="customers:timeline",
        guards=[allow(*_READERS)],
        summary="Signals and profile changes, newest first, with a cursor to page on",
    )
    @inject
    async def timeline(
        self,
        customer_id: UUID,
        queries: FromDishka[CustomerQueries],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> TimelineOut:
        survivor, page = await queries.timeline(customer_id, limit=limit, before=_position(cursor))
        items = [
            TimelineItemOut(
                e.position,
                e.topic.rpartition(":")[2],
                e.stream_id,
                e.version,
                e.recorded_at,
                {k: v for k, v in e.data.items() if k != "originator_topic"},
            )
            for e in page.events
        ]
        return TimelineOut(survivor, items, _cursor(page.next_before))
