"""The audit API: a customer as of an instant, the raw log as JSON lines, every decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.params import Parameter
from litestar.response import Stream

from application.audit.customer_as_of import CustomerAsOf, CustomerAsOfView
from application.audit.decisions import AuditDecisions, AuditedDecision
from application.audit.event_log import MAX_PAGE, ReadAuditLog
from application.audit.refusals import AuditQueryRefused
from domain.catalog import TOPICS
from domain.policy.decision import Outcome
from domain.shared.times import time_fault
from entrypoints.audit_lines import LINE_MEDIA_TYPE, cursor_text, line_of, parse_cursor
from entrypoints.http.auth import allow
from entrypoints.http.problems import problem
from ports.api_keys import Role
from ports.audit import LogCursor, LogFilter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ports.audit import LogPlan

__all__ = ["AuditController", "DecisionsOut"]

_MAX_STREAMS = 100
_MAX_TYPES = 50
_MAX_TEXT = 200
_READABLE = TOPICS.readable()


def _refused(request: Request[Any, Any, Any], exc: AuditQueryRefused) -> Response[Any]:
    return problem(
        400,
        "invalid-request",
        "The request is not valid",
        str(exc),
        errors=[{"field": f"query.{exc.parameter}", "reason": exc.reason}],
    )


def _time(text: str | None, parameter: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text[:_MAX_TEXT])
    except ValueError:
        raise AuditQueryRefused(
            parameter, "is not an ISO 8601 time such as 2026-11-27T10:00:00Z"
        ) from None
    reason = time_fault(value)
    if reason is not None:
        raise AuditQueryRefused(parameter, reason)
    return value


def _limit(text: str | None, default: int, highest: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 8 and 1 <= int(text) <= highest):
        raise AuditQueryRefused("limit", f"must be a whole number from 1 to {highest}")
    return int(text)


def _uuid(text: str, parameter: str) -> UUID:
    try:
        return UUID(text[:_MAX_TEXT])
    except ValueError:
        raise AuditQueryRefused(parameter, f"{text[:_MAX_TEXT]!r} is not a UUID") from None


def _streams(texts: list[str] | None) -> tuple[UUID, ...]:
    if not texts:
        return ()
    if len(texts) > _MAX_STREAMS:
        raise AuditQueryRefused("stream", f"at most {_MAX_STREAMS} streams at once")
    return tuple(_uuid(text, "stream") for text in texts)


def _types(texts: list[str] | None) -> tuple[str, ...]:
    if not texts:
        return ()
    if len(texts) > _MAX_TYPES:
        raise AuditQueryRefused("type", f"at most {_MAX_TYPES} types at once")
    for text in texts:
        if text not in _READABLE:
            raise AuditQueryRefused(
                "type",
                f"{text[:_MAX_TEXT]!r} is not the stable name of an event, such as "
                "'domain.customer.aggregate:Customer.ConsentChanged' (docs/audit.md lists them)",
            )
    return tuple(sorted(set(texts)))


def _outcomes(texts: list[str] | None) -> tuple[Outcome, ...]:
    outcomes: list[Outcome] = []
    for text in texts or ():
        for part in text.split(","):
            try:
                outcomes.append(Outcome(part))
            except ValueError:
                choices = ", ".join(o.value for o in Outcome)
                raise AuditQueryRefused(
                    "outcome", f"{part[:_MAX_TEXT]!r} is not an outcome; choose from {choices}"
                ) from None
    return tuple(outcomes)


def _paging(
    request: Request[Any, Any, Any], next_cursor: LogCursor, at_end: bool
) -> dict[str, str]:
    """The next cursor in headers, and a `Link` to the next page while there is more now."""
    headers = {"Chorus-Next-Cursor": cursor_text(next_cursor), "Chorus-At-End": str(at_end).lower()}
    if not at_end:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        query.append(("after", cursor_text(next_cursor)))
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return headers


@dataclass(frozen=True, slots=True)
class DecisionsOut:
    items: list[AuditedDecision]
    next_cursor: str | None  # None once this page reached the end of the log readable now


_AUDITORS = allow(Role.AUDITOR)
_PAGE_HEADER_DOCS = [
    ResponseHeader(
        name="Chorus-Next-Cursor",
        description="Where the next page starts: give it as `after`, now or later",
        documentation_only=True,
    ),
    ResponseHeader(
        name="Chorus-At-End",
        description="`true` when this page reached the end of the log readable now",
        documentation_only=True,
    ),
    ResponseHeader(
        name="Link",
        description='`<...>; rel="next"`: the next page, while there is more now',
        required=False,
        documentation_only=True,
    ),
]
_TIME = "ISO 8601 with an offset, e.g. 2026-11-27T10:00:00Z"
_CURSOR = "A line's `cursor`, or a page's `Chorus-Next-Cursor`; default the start of the log"
_PAGE_HEADERS = (
    "The page's end as `Chorus-Next-Cursor` (give it as `after`), `Chorus-At-End` (true when "
    'this page reached the end of the log readable now), and `Link: <...>; rel="next"` while '
    "there is more."
)


class AuditController(Controller):
    tags = ["audit"]
    guards = [_AUDITORS]
    exception_handlers = {AuditQueryRefused: _refused}

    @get(
        "/v1/audit/customers/{customer_id:uuid}",
        operation_id="auditCustomer",
        name="audit:customer",
        summary="A customer as Chorus knew them at an instant, rebuilt from the event log",
        description=(
            "Profile, identities with their verification (and since when), consents with their "
            "proof (source and time), suppressions, segment memberships and merges, from the "
            "customer's stream and their membership streams up to `as_of` (default: now), "
            "never from a read model. A merged customer answers as they stood, `merged_into` "
            "naming the survivor and when. 404 when the customer did not exist at that "
            "instant; 400 for an `as_of` that is not a time or is in the future."
        ),
    )
    @inject
    async def customer(
        self,
        customer_id: UUID,
        as_of_customer: FromDishka[CustomerAsOf],
        as_of: Annotated[str | None, Parameter(description=_TIME + "; default now")] = None,
    ) -> CustomerAsOfView:
        return await as_of_customer(customer_id, _time(as_of, "as_of"))

    @get(
        "/v1/audit/events",
        operation_id="auditEvents",
        name="audit:events",
        media_type=LINE_MEDIA_TYPE,
        response_headers=_PAGE_HEADER_DOCS,
        summary="The raw event log as JSON lines, a bounded page at a time, resumable",
        description=(
            "One line per event in the order events became visible: `position`, `cursor` "
            "(resume after this event with `after=`), `stream`, `version`, `type` (the "
            "event's stable name), `recorded_at` and `payload` as stored. Filters: `stream` "
            "(repeatable), `type` (repeatable), `since` (included) and `until` (excluded). "
            f"At most `limit` lines (default 1000, at most {MAX_PAGE}); a page of a rare "
            "filter may hold fewer and still have more after it. " + _PAGE_HEADERS
        ),
    )
    @inject
    async def events(
        self,
        request: Request[Any, Any, Any],
        log: FromDishka[ReadAuditLog],
        after: Annotated[str | None, Parameter(description=_CURSOR)] = None,
        limit: Annotated[str | None, Parameter(description="1 to 10000; default 1000")] = None,
        since: Annotated[str | None, Parameter(description=_TIME + "; included")] = None,
        until: Annotated[str | None, Parameter(description=_TIME + "; excluded")] = None,
        stream: Annotated[
            list[str] | None, Parameter(query="stream", description="A stream's id (a UUID)")
        ] = None,
        types: Annotated[
            list[str] | None,
            Parameter(query="type", description="An event's stable name (docs/audit.md)"),
        ] = None,
    ) -> Stream:
        where = LogFilter(
            streams=_streams(stream),
            topics=_types(types),
            since=_time(since, "since"),
            until=_time(until, "until"),
        )
        plan = await log.plan(where, parse_cursor(after), _limit(limit, 1_000, MAX_PAGE))
        return Stream(
            _lines(log, where, plan),
            media_type=LINE_MEDIA_TYPE,
            headers=_paging(request, plan.next, plan.at_end),
        )

    @get(
        "/v1/audit/decisions",
        operation_id="auditDecisions",
        name="audit:decisions",
        response_headers=_PAGE_HEADER_DOCS,
        summary="Every recorded decision, the deferred and suppressed too, with their reasons",
        description=(
            "Decisions in the order they were recorded, each as `GET /v1/decisions/{id}` shows "
            "it: outcome, channel, rule-set version, every rule that fired, the request. "
            "Filters: `customer` (and the customers merged into them), `since` (included), "
            "`until` (excluded), `outcome` (send, reroute, defer, suppress; repeatable or "
            "comma-separated). At most `limit` (default 100, at most 1000). " + _PAGE_HEADERS
        ),
    )
    @inject
    async def decisions(
        self,
        request: Request[Any, Any, Any],
        audit: FromDishka[AuditDecisions],
        customer: Annotated[str | None, Parameter(description="A customer's id")] = None,
        since: Annotated[str | None, Parameter(description=_TIME + "; included")] = None,
        until: Annotated[str | None, Parameter(description=_TIME + "; excluded")] = None,
        outcome: Annotated[
            list[str] | None, Parameter(description="send, reroute, defer or suppress")
        ] = None,
        after: Annotated[str | None, Parameter(description=_CURSOR)] = None,
        limit: Annotated[str | None, Parameter(description="1 to 1000; default 100")] = None,
    ) -> Response[DecisionsOut]:
        page = await audit(
            customer=None if customer is None else _uuid(customer, "customer"),
            since=_time(since, "since"),
            until=_time(until, "until"),
            outcomes=_outcomes(outcome),
            after=parse_cursor(after),
            limit=_limit(limit, 100, 1_000),
        )
        next_cursor = None if page.at_end else cursor_text(page.next)
        return Response(
            DecisionsOut(page.decisions, next_cursor),
            headers=_paging(request, page.next, page.at_end),
        )


async def _lines(log: ReadAuditLog, where: LogFilter, plan: LogPlan) -> AsyncIterator[bytes]:
    async for event in log.events(where, plan):
        yield line_of(event)
