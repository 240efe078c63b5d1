"""Customers: read by id or identity, upsert by identity, timeline."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from application.customer.change_consent import ChangeConsent
from application.customer.change_suppression import ChangeSuppression
from application.customer.erase_customer import EraseCustomer
from application.customer.upsert_customer import UpsertCustomer
from application.idempotent_writes import IdempotentWrites
from application.queries.customer_timeline import CustomerTimeline
from application.queries.customers import CustomerQueries, CustomerView
from domain.customer.contact import ConsentRecord
from domain.customer.identities import Identity, IdentityClaim, IdentityNormalizer
from domain.customer.profile import Profile, check_attributes
from domain.segments.aggregate import segment_id
from domain.shared.durations import parse_duration
from domain.shared.errors import InvalidValue
from entrypoints.http.auth import allow, author
from entrypoints.http.idempotency import answer_once
from entrypoints.http.principal import principal_of
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
from entrypoints.text_checks import InputRefused, TextFault, raw_fault
from ports.api_keys import Role
from ports.clock import Clock
from ports.directory import Directory, DirectorySearch
from ports.segments import SegmentReadModel

__all__ = ["CustomersController"]

_READERS = (Role.MARKETER, Role.AGENT, Role.AUDITOR, Role.SERVICE)


def _cursor(position: int | None) -> str | None:
    return None if position is None else base64.urlsafe_b64encode(str(position).encode()).decode()


def _position(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        position = int(base64.urlsafe_b64decode(cursor.encode()).decode())
        if not 0 <= position < 2**63:  # a log position is a PostgreSQL bigint
            raise ValueError(position)
        return position
    except ValueError:
        raise ValidationException(
            "bad cursor",
            extra=[{"key": "cursor", "source": "query", "message": "not a cursor from this API"}],
        ) from None


_LONGEST_WINDOW = timedelta(days=3650)


class DirectoryEntryOut(msgspec.Struct):
    id: UUID
    identities: list[str]
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    updated_at: datetime


class DirectoryOut(msgspec.Struct):
    items: list[DirectoryEntryOut]
    next_cursor: str | None


class ErasureOut(msgspec.Struct):
    customer_id: UUID
    erased_ids: list[UUID]
    erased_at: datetime


class ActivityCountOut(msgspec.Struct):
    signal_type: str
    count: int
    last_at: datetime


class SegmentKeyOut(msgspec.Struct):
    key: str


class CustomerSegmentsOut(msgspec.Struct):
    customer_id: UUID
    items: list[SegmentKeyOut]
    next_cursor: str | None


class ActivityOut(msgspec.Struct):
    customer_id: UUID
    within: str
    items: list[ActivityCountOut]
    next_cursor: str | None


def _query_refused(name: str, reason: str) -> InputRefused:
    """A query parameter refused: a 400 `invalid-request` naming `query.<name>`."""
    return InputRefused(TextFault(f"query.{name}", reason))


def _identity(normalizer: IdentityNormalizer, text: str) -> Identity:
    """`?identity=` as TYPE:VALUE, normalized, as a signal's identity is."""
    try:
        return normalizer.parse(text)
    except InvalidValue as error:
        part = "" if error.field == "identity" else f"{error.field}: "
        raise _query_refused("identity", part + error.reason) from None


def _attribute(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition(":")
    if not sep or not name:
        raise _query_refused("attribute", f"{text!r} is not NAME:VALUE, e.g. tier:gold")
    fault = raw_fault(raw.encode())  # read as JSON below: nesting too deep to decode, say
    if fault is not None:
        raise _query_refused("attribute", f"{name}: the value {fault.reason}")
    try:
        return name, msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return name, raw


def _segment(key: str) -> UUID:
    try:
        return segment_id(key)
    except InvalidValue:
        raise _query_refused("segment", f"{key!r} is not a segment key") from None


def _within(text: str) -> timedelta:
    """`?within=` of a customer's activity: whole hours from 1h to 3650d."""
    try:
        span = parse_duration(text)
    except ValueError as error:
        raise _query_refused("within", str(error)) from None
    if not timedelta(hours=1) <= span <= _LONGEST_WINDOW or span % timedelta(hours=1):
        raise _query_refused("within", f"{text!r}: whole hours from 1h to 3650d, e.g. 24h, 7d")
    return span


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
        return await queries.by_identity(_identity(normalizer, identity))

    @put(
        operation_id="upsertCustomer",
        name="customers:upsert",
        guards=[allow(Role.SERVICE, Role.AGENT, Role.MARKETER)],
        status_code=200,
        summary="Create or update the customer these identities name, merging if they disagree",
        description="201 when no customer had these identities and one was created, else 200.",
        responses={
            201: ResponseSpec(CustomerUpsertOut, description="A customer was created"),
        },
    )
    @inject
    async def upsert_customer(
        self,
        data: CustomerUpsertIn,
        upsert: FromDishka[UpsertCustomer],
        queries: FromDishka[CustomerQueries],
        normalizer: FromDishka[IdentityNormalizer],
    ) -> Response[CustomerUpsertOut]:
        claims = tuple(
            IdentityClaim(normalizer.normalize(i.type, i.value), i.verification)
            for i in data.identities
        )
        profile = data.profile.changes() if data.profile else {}
        Profile().merged_with(profile)
        check_attributes(data.attributes)
        done = await upsert(claims, profile, dict(data.attributes))
        return Response(
            CustomerUpsertOut(
                done.created, list(done.merged), await queries.by_id(done.customer_id)
            ),
            status_code=201 if done.created else 200,
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

    @post(
        "/{customer_id:uuid}/erase",
        operation_id="eraseCustomer",
        name="customers:erase",
        guards=[allow()],
        status_code=200,
        summary="Erase a customer's personal data for good (crypto-shredding); admin only",
        description=(
            "Deletes the keys that sealed the customer's personal values (and those of the "
            "customers merged into them), and records `Customer.Erased`: from then on every "
            "read, replay, rebuild and audit shows those values as `[erased]`, while the log "
            "keeps every event, count and decision. Their identities find no one any more; a "
            "signal naming one again makes a new customer. A merged id erases its survivor. "
            "What was still to be sent to them ends on record in the same transaction, reason "
            "`customer erased`: held approvals `withdrawn`, deferred messages suppressed, "
            "queued ones withdrawn before a provider takes them. "
            "Erasing an erased customer answers the same (docs/erasure.md). With an "
            "`Idempotency-Key` header, a retry is answered as the first request was."
        ),
    )
    @inject
    async def erase_customer(
        self,
        customer_id: UUID,
        request: Request[Any, Any, Any],
        erase: FromDishka[EraseCustomer],
        writes: FromDishka[IdempotentWrites],
    ) -> Response[ErasureOut]:
        async def write() -> tuple[int, ErasureOut]:
            done = await erase(customer_id, author(request))
            return 200, ErasureOut(done.customer_id, list(done.erased_ids), done.erased_at)

        return await answer_once(request, writes, None, ErasureOut, write)

    @get(
        "/search",
        operation_id="searchCustomers",
        name="customers:search",
        guards=[allow(*_READERS)],
        summary="Customers by identity, identity type, attributes and segment, a page at a time",
        description=(
            "From the customer directory read model (a moment behind the writes). Every given "
            "criterion must hold: `?identity=email:ana@example.org`, `?identity_type=phone`, "
            "`?attribute=tier:gold` (repeatable; the value is read as JSON when it parses, so "
            "`vip:true` and `orders:3` match booleans and numbers, else as text; profile fields "
            "such as `country:PT` too), `?segment=lapsed-buyers`. `?limit=` 1-500, `?after=` "
            "the previous page's `next_cursor`."
        ),
    )
    @inject
    async def search_customers(
        self,
        directory: FromDishka[Directory],
        normalizer: FromDishka[IdentityNormalizer],
        identity: Annotated[str | None, Parameter(max_length=320)] = None,
        identity_type: Annotated[str | None, Parameter(max_length=64)] = None,
        attribute: Annotated[list[str] | None, Parameter(max_items=20)] = None,
        segment: Annotated[str | None, Parameter(max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        after: Annotated[str | None, Parameter(max_length=64)] = None,
    ) -> DirectoryOut:
        criteria = DirectorySearch(
            identity=str(_identity(normalizer, identity)) if identity else None,
            identity_type=identity_type,
            attributes=dict(_attribute(a) for a in attribute or []),
            segment_id=_segment(segment) if segment else None,
        )
        page = await directory.search(criteria, after=after, limit=limit)
        return DirectoryOut(
            [
                DirectoryEntryOut(
                    c.customer_id, c.identities, c.profile, c.attributes, c.updated_at
                )
                for c in page.customers
            ],
            page.next_cursor,
        )

    @get(
        "/{customer_id:uuid}/segments",
        operation_id="getCustomerSegments",
        name="customers:segments",
        guards=[allow(*_READERS)],
        summary="The keys of the segments the customer is in now (a merged id: the survivor's)",
    )
    @inject
    async def segments_of(
        self,
        customer_id: UUID,
        queries: FromDishka[CustomerQueries],
        segments: FromDishka[SegmentReadModel],
    ) -> CustomerSegmentsOut:
        customer = await queries.by_id(customer_id)
        keys = await segments.segments_of(customer.id)
        return CustomerSegmentsOut(customer.id, [SegmentKeyOut(k) for k in keys], next_cursor=None)

    @get(
        "/{customer_id:uuid}/activity",
        operation_id="getCustomerActivity",
        name="customers:activity",
        guards=[allow(*_READERS)],
        summary="Signals per type in a rolling window (whole hours), and the latest of each",
        description=(
            "`?within=` whole hours from 1h to 3650d (default 24h): the counters are kept per "
            "hour, so the window starts at the top of the hour."
        ),
    )
    @inject
    async def activity(
        self,
        customer_id: UUID,
        queries: FromDishka[CustomerQueries],
        directory: FromDishka[Directory],
        clock: FromDishka[Clock],
        within: Annotated[str, Parameter(max_length=16)] = "24h",
    ) -> ActivityOut:
        span = _within(within)
        customer = await queries.by_id(customer_id)
        counts = await directory.activity(customer.id, clock.now() - span)
        return ActivityOut(
            customer.id,
            within,
            [ActivityCountOut(c.signal_type, c.count, c.last_at) for c in counts],
            next_cursor=None,
        )

    @get(
        "/{customer_id:uuid}/timeline",
        operation_id="getCustomerTimeline",
        name="customers:timeline",
        guards=[allow(*_READERS)],
        summary="Signals and profile changes, newest first, with a cursor to page on",
        description=(
            "A key limited to teams gets only its teams' decisions, approvals and messages, "
            "and the conversations it sees in the inbox; the rest is the customer's, "
            "everyone's. Such a page may hold fewer than `limit` events and still have a "
            "`next_cursor`."
        ),
    )
    @inject
    async def timeline(
        self,
        customer_id: UUID,
        request: Request[Any, Any, Any],
        timeline: FromDishka[CustomerTimeline],
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> TimelineOut:
        page = await timeline.page(
            customer_id,
            (await principal_of(request)).team_scope,
            limit=limit,
            before=_position(cursor),
        )
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
        return TimelineOut(page.customer_id, items, _cursor(page.next_before))
