"""The inbox over HTTP: conversations listed and filtered a page at a time, one conversation's
thread across channels with its customer's context, and the inbox's changes as server-sent
events (`/v1/conversations/stream`), resumable with `Last-Event-ID`.

The list and the stream read the inbox projection, which follows the log (a moment behind a
command); one conversation is read from its stream, as last committed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get
from litestar.exceptions import NotAuthorizedException
from litestar.params import Parameter

from application.queries.customer_context import CustomerContext
from application.queries.inbox import ConversationDetail, ConversationHidden, InboxQueries
from application.queries.inbox_feed import FeedOverrun
from domain.conversation.vocabulary import Priority
from domain.policy.vocabulary import Channel
from domain.shared.durations import parse_duration
from entrypoints.http.auth import READERS, allow
from entrypoints.http.event_stream import KEEP_ALIVE, RECONNECT_MS, EventStream, event
from entrypoints.http.principal import REACH_SECONDS, LiveReach, principal_of
from entrypoints.http.problems import bad_cursor, problem
from entrypoints.text_checks import InputRefused, TextFault
from ports.inbox import InboxFilter, InboxRow, InboxStatus, InvalidInboxCursor

__all__ = ["ConversationsController", "visible_teams"]


HEARTBEAT_SECONDS = 15.0
"""How long a quiet stream waits before a comment line keeps its connection open."""

KeyParameter = Annotated[str | None, Parameter(max_length=64)]
_MAX_BREACH_WITHIN = timedelta(days=366)


async def visible_teams(request: Request[Any, Any, Any]) -> frozenset[str] | None:
    """The teams whose conversations the request's key may see; None for every team.

    Admin, service and auditor keys see every team; an agent key its agent's teams (an agent
    key naming no agent, none), a key limited to teams no more than those, and a marketer
    none. An unrouted conversation is on no team's
    inbox yet, so only the keys that see every team find it.
    """
    return (await principal_of(request)).visible_teams


class SlaOut(msgspec.Struct):
    """The running SLA clock: which answer, when it breaches (or breached), and the seconds
    left (negative once breached)."""

    sla: str
    due: datetime
    breached: bool
    seconds_left: float


class ConversationSummaryOut(msgspec.Struct):
    """A conversation as the inbox lists it; `seq` orders changes (the stream's event id)."""

    id: UUID
    customer_id: UUID
    topic: str
    status: str
    team: str | None
    agent: str | None
    priority: str
    intent: str | None
    sentiment: str | None
    channel: str | None
    channels: list[str]
    tags: list[str]
    messages: int
    notes: int
    breaches: int
    last_message_at: datetime | None
    awaiting_since: datetime | None
    snoozed_until: datetime | None
    started_at: datetime
    updated_at: datetime
    sla: SlaOut | None
    seq: int
    links: dict[str, str]


class ConversationsOut(msgspec.Struct):
    """A page, most recently changed first; `last_event_id` is the inbox's last change as
    read: a stream opened with it as `Last-Event-ID` misses nothing since this page."""

    items: list[ConversationSummaryOut]
    next_cursor: str | None
    last_event_id: int


class ThreadMessageOut(msgspec.Struct):
    id: UUID
    direction: str
    channel: str
    at: datetime
    author: str
    text: str
    template: str | None
    provider_status: str | None


class NoteOut(msgspec.Struct):
    id: UUID
    author: str
    text: str
    at: datetime


class AssignmentOut(msgspec.Struct):
    change: str
    team: str | None
    agent: str | None
    reason: str
    by: str
    at: datetime


class ClassificationOut(msgspec.Struct):
    intent: str | None
    sentiment: str | None
    confidence: float | None
    at: datetime
    unknown_reason: str | None = None  # why `intent` is null: `not_text`, `low_confidence`..


class BreachOut(msgspec.Struct):
    sla: str
    due: datetime


class IdentityOut(msgspec.Struct):
    """`too_low`: below `verified`, it never unlocks account-sensitive actions or data."""

    identity: str
    verification: str
    too_low: bool


class SignalCountOut(msgspec.Struct):
    signal_type: str
    count: int
    last_at: datetime


class CampaignInOut(msgspec.Struct):
    campaign: str | None
    campaign_id: UUID
    enrollment_id: UUID
    step: str | None
    entered_at: datetime


class CustomerContextOut(msgspec.Struct):
    """Who the customer is. `unverified_identity` flags that one of their identities is too
    low to trust with account-sensitive actions or data."""

    id: UUID
    known: bool
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    tier: str | None
    segments: list[str]
    recent_signals: list[SignalCountOut]
    open_campaigns: list[CampaignInOut]
    identities: list[IdentityOut]
    unverified_identity: bool


class ConversationOut(msgspec.Struct):
    """One conversation: the thread across channels, notes, who held it and why, and its
    customer's context."""

    id: UUID
    customer_id: UUID
    topic: str
    status: str
    team: str | None
    agent: str | None
    priority: str
    tags: list[str]
    classification: ClassificationOut | None
    channels: list[str]
    last_channel: str | None
    snoozed_until: datetime | None
    started_at: datetime
    version: int
    sla: SlaOut | None
    breaches: list[BreachOut]
    thread: list[ThreadMessageOut]
    notes: list[NoteOut]
    assignments: list[AssignmentOut]
    customer: CustomerContextOut


def _sla(row: InboxRow | None, now: datetime) -> SlaOut | None:
    if row is None or row.deadline is None:
        return None
    deadline = row.deadline
    left = (deadline.due - now).total_seconds()
    return SlaOut(str(deadline.sla), deadline.due, deadline.breached, left)


def summary_out(row: InboxRow, now: datetime) -> ConversationSummaryOut:
    return ConversationSummaryOut(
        id=row.conversation_id,
        customer_id=row.customer_id,
        topic=row.topic,
        status=str(row.status),
        team=row.team,
        agent=row.agent,
        priority=str(row.priority),
        intent=row.intent,
        sentiment=None if row.sentiment is None else str(row.sentiment),
        channel=None if row.channel is None else str(row.channel),
        channels=[str(c) for c in row.channels],
        tags=list(row.tags),
        messages=row.messages,
        notes=row.notes,
        breaches=row.breaches,
        last_message_at=row.last_message_at,
        awaiting_since=row.awaiting_since,
        snoozed_until=row.snoozed_until,
        started_at=row.started_at,
        updated_at=row.updated_at,
        sla=_sla(row, now),
        seq=row.seq,
        links={
            "self": f"/v1/conversations/{row.conversation_id}",
            "customer": f"/v1/customers/{row.customer_id}",
        },
    )


def _detail_out(found: ConversationDetail, now: datetime) -> ConversationOut:
    known = found.classification
    return ConversationOut(
        id=found.conversation_id,
        customer_id=found.customer_id,
        topic=found.topic,
        status=found.status,
        team=found.team,
        agent=found.agent,
        priority=str(found.priority),
        tags=found.tags,
        classification=None
        if known is None
        else ClassificationOut(
            known.intent,
            None if known.sentiment is None else str(known.sentiment),
            known.confidence,
            known.at,
            known.unknown_reason,
        ),
        channels=[str(c) for c in found.channels],
        last_channel=None if found.last_channel is None else str(found.last_channel),
        snoozed_until=found.snoozed_until,
        started_at=found.started_at,
        version=found.version,
        sla=_sla(found.inbox, now),
        breaches=[BreachOut(str(sla), due) for sla, due in found.breaches],
        thread=[
            ThreadMessageOut(
                m.message_id,
                str(m.direction),
                str(m.channel),
                m.at,
                m.author,
                m.text,
                m.template,
                None if m.status is None else str(m.status),
            )
            for m in found.thread
        ],
        notes=[NoteOut(*note) for note in found.notes],
        assignments=[
            AssignmentOut(str(a.kind), a.team, a.agent, a.reason, a.by, a.at) for a in found.history
        ],
        customer=_customer_out(found.customer_id, found.customer),
    )


def _customer_out(customer_id: UUID, context: CustomerContext | None) -> CustomerContextOut:
    """The customer's context as the thread shows it; an unknown (or erased) customer is
    named by the conversation's customer id, with nothing known about them."""
    if context is None:
        return CustomerContextOut(customer_id, False, {}, {}, None, [], [], [], [], False)
    return CustomerContextOut(
        id=context.customer_id,
        known=True,
        profile=context.profile,
        attributes=context.attributes,
        tier=context.tier,
        segments=context.segments,
        recent_signals=[
            SignalCountOut(s.signal_type, s.count, s.last_at) for s in context.signal_counts
        ],
        open_campaigns=[
            CampaignInOut(c.key, c.campaign_id, c.enrollment_id, c.step, c.entered_at)
            for c in context.in_campaigns
        ],
        identities=[
            IdentityOut(f"{i.type}:{i.value}", i.verification, i.too_low)
            for i in context.identities
        ],
        unverified_identity=context.unverified,
    )


def _hidden(request: Request[Any, Any, Any], exc: ConversationHidden) -> Response[Any]:
    return problem(403, "forbidden", "This conversation is not one of your teams'", str(exc))


def _within(text: str | None) -> timedelta | None:
    """`?breach_within=` as a span; a 400 naming `query.breach_within`, as any query
    parameter refused."""
    if text is None:
        return None
    try:
        span = parse_duration(text)
    except ValueError as error:
        raise InputRefused(TextFault("query.breach_within", str(error))) from None
    if span > _MAX_BREACH_WITHIN:
        raise InputRefused(TextFault("query.breach_within", "at most 366d"))
    return span


def _filter(
    team: str | None,
    agent: str | None,
    status: InboxStatus | None,
    channel: Channel | None,
    intent: str | None,
    priority: Priority | None,
    customer_id: UUID | None,
    assigned: bool | None,
    tag: str | None = None,
) -> InboxFilter:
    return InboxFilter(
        team=team,
        agent=agent,
        status=status,
        channel=channel,
        intent=intent,
        priority=priority,
        customer_id=customer_id,
        assigned=assigned,
        tag=tag,
    )


def _last_event_id(request: Request[Any, Any, Any], after: int | None) -> int | None:
    """The `Last-Event-ID` header, else `?after=`; a 400 naming `header.Last-Event-ID` for a
    header that is no event id."""
    header = request.headers.get("last-event-id")
    if header is None or not header.strip():
        return after
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        reason = f"{text[:40]!r} is not an event id of this stream"
        raise InputRefused(TextFault("header.Last-Event-ID", reason))
    return int(text)


_FILTERS = (
    "`?team=`, `?agent=`, `?status=` (open: no message yet; waiting_on_us; "
    "waiting_on_customer; snoozed; resolved; or unresolved: any but resolved), `?channel=` "
    "(any message of the thread on it), `?intent=`, `?priority=` (low, normal, high, urgent), "
    "`?tag=`, `?customer_id=`, `?breach_within=` (a span such as 30m or 4h: the running SLA "
    "clock breaches within it from now, or breached already) and `?assigned=` (false: "
    "unresolved and held by no agent, waiting in its team's queue or in no team yet; true: "
    "unresolved and held by an agent)."
)


class ConversationsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]
    exception_handlers = {InvalidInboxCursor: bad_cursor, ConversationHidden: _hidden}

    @get(
        "/",
        operation_id="listConversations",
        name="conversations:list",
        guards=[allow(*READERS)],
        summary="The inbox: conversations of the teams the key sees, most recently changed first",
        description=(
            _FILTERS + " `?limit=` (1-500, default 50) and `?after=` the previous `next_cursor`;"
            " `last_event_id` opens the stream right after this page."
        ),
    )
    @inject
    async def list_conversations(
        self,
        request: Request[Any, Any, Any],
        queries: FromDishka[InboxQueries],
        team: KeyParameter = None,
        agent: Annotated[str | None, Parameter(max_length=200)] = None,
        status: InboxStatus | None = None,
        channel: Channel | None = None,
        intent: KeyParameter = None,
        priority: Priority | None = None,
        customer_id: UUID | None = None,
        tag: KeyParameter = None,
        breach_within: Annotated[str | None, Parameter(max_length=40)] = None,
        assigned: bool | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        after: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> ConversationsOut:
        where = _filter(team, agent, status, channel, intent, priority, customer_id, assigned, tag)
        page = await queries.page(
            where,
            await visible_teams(request),
            breach_within=_within(breach_within),
            after=after,
            limit=limit,
        )
        now = queries.clock.now()
        items = [summary_out(row, now) for row in page.items]
        return ConversationsOut(items, page.next_cursor, page.high_water)

    @get(
        "/stream",
        operation_id="streamConversations",
        name="conversations:stream",
        guards=[allow(*READERS)],
        summary="The inbox's changes as server-sent events, with the list's filters",
        description=(
            "Each change is an event `conversation` whose data is the conversation as the list "
            "shows it and whose `id` is its `seq`; a reconnecting client sends `Last-Event-ID` "
            "(or `?after=`) and gets every change since, then the live ones. Without either, "
            "the stream starts with the changes after it opened. It answers at once with "
            f"`retry: {RECONNECT_MS}` and the comment `: open`, before any change, and a comment "
            f"line (`: keep-alive`) comes every {HEARTBEAT_SECONDS:.0f} s when nothing changes. "
            "The stream follows the key's "
            f"reach as it changes, within {REACH_SECONDS:.0f} s: an agent taken off a team gets "
            "no more of its conversations, and a key revoked, expired or rotated ends the "
            "stream. " + _FILTERS
        ),
    )
    @inject
    async def stream_conversations(
        self,
        request: Request[Any, Any, Any],
        queries: FromDishka[InboxQueries],
        team: KeyParameter = None,
        agent: Annotated[str | None, Parameter(max_length=200)] = None,
        status: InboxStatus | None = None,
        channel: Channel | None = None,
        intent: KeyParameter = None,
        priority: Priority | None = None,
        customer_id: UUID | None = None,
        tag: KeyParameter = None,
        breach_within: Annotated[str | None, Parameter(max_length=40)] = None,
        assigned: bool | None = None,
        after: Annotated[int | None, Parameter(ge=0, le=2**62)] = None,
    ) -> EventStream:
        where = _filter(team, agent, status, channel, intent, priority, customer_id, assigned, tag)
        within = _within(breach_within)
        start = _last_event_id(request, after)
        principal = await principal_of(request)
        if start is None:
            # The changes after the stream opened: read before its opening is sent, so that a
            # change committed once the client has the opening is never missed.
            start = await queries.last_change()
        encoder = msgspec.json.Encoder()

        async def events() -> AsyncGenerator[str, None]:
            changes = queries.changes(
                where,
                principal.visible_teams,
                after=start,
                breach_within=within,
                heartbeat=HEARTBEAT_SECONDS,
                reach=LiveReach(request, principal),
                reach_every=REACH_SECONDS,
            )
            try:
                async for batch in changes:
                    if not batch:
                        yield KEEP_ALIVE
                        continue
                    now = queries.clock.now()
                    for row in batch:
                        data = encoder.encode(summary_out(row, now)).decode()
                        yield event("conversation", row.seq, data)
            except FeedOverrun:
                return  # too far behind: the client reconnects with Last-Event-ID
            except NotAuthorizedException:
                return  # the key was revoked, expired or rotated: reconnecting is a 401
            finally:
                await changes.aclose()

        return EventStream(events(), headers={"Cache-Control": "no-store"})

    @get(
        "/{conversation_id:uuid}",
        operation_id="getConversation",
        name="conversations:get",
        guards=[allow(*READERS)],
        summary="One conversation: its thread across channels and its customer's context",
        description=(
            "Messages in and out with their channel (and, for replies, the provider's last "
            "status), notes, every assignment with its reason, tags, priority, intent and "
            "sentiment, the SLA clock; the customer's profile, tier, segments, signal counts of "
            "the last 30 days and the campaigns they are in now, each identity flagged "
            "`too_low` when its verification is below `verified`. Another team's: 403."
        ),
    )
    @inject
    async def get_conversation(
        self,
        conversation_id: UUID,
        request: Request[Any, Any, Any],
        queries: FromDishka[InboxQueries],
    ) -> ConversationOut:
        principal = await principal_of(request)
        found = await queries.conversation(
            conversation_id, principal.visible_teams, principal.team_scope
        )
        return _detail_out(found, queries.clock.now())
