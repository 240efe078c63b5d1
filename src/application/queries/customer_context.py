"""A customer's context: a short summary of who they are, what they did lately, what they are
talking to us about, and what was last decided about them and why. Built from the read models
with a few indexed reads, each with a limit, for the inbox, routing and reply suggestions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta  # views are rendered by their run-time type hints
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.queries.team_scope import EVERY_TEAM, TeamScope, team_of_decision
from domain.assistant.classification import CustomerContext as UrgencyContext
from domain.catalog import topic_of
from domain.conversation.aggregate import ConversationStatus
from domain.conversation.routing_book import ROUTING_BOOK_ID, RoutingBook
from domain.conversation.vocabulary import Sentiment
from domain.customer.aggregate import Customer
from domain.customer.identities import Verification
from domain.shared.topics import events_of
from ports.customer_context import RecentSignal
from ports.enrollments import EnrollmentStatus
from ports.inbox import InboxFilter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from application.queries.customers import CustomerQueries
    from ports.campaigns import CampaignReadModel
    from ports.clock import Clock
    from ports.customer_context import ContextReads
    from ports.customers import StoredEvent
    from ports.directory import Directory
    from ports.enrollments import EnrollmentReadModel
    from ports.inbox import InboxReadModel
    from ports.segments import SegmentReadModel
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "CLASSIFIED_TOPICS",
    "DECISION_TOPICS",
    "LAST_ITEMS",
    "MINIMUM_VERIFICATION",
    "ORDER_SIGNALS",
    "RECENT",
    "SCOPED_DECISIONS",
    "CampaignIn",
    "ClassifiedMessage",
    "ContextIdentity",
    "ContextQueries",
    "CustomerContext",
    "LastDecision",
    "OpenConversation",
    "SignalCount",
]

RECENT = timedelta(days=30)
"""How far back signals and orders are counted."""
LAST_ITEMS = 5
"""How many of each list the context shows: signals, orders, campaigns, conversations,
decisions. The counts say how many there are."""
ORDER_SIGNALS = frozenset({"order.placed", "order_placed", "purchase", "order.completed"})
"""The signal types that are orders, unless the service is told others."""
MINIMUM_VERIFICATION = Verification.VERIFIED
"""An identity below this is flagged: it never unlocks account-sensitive actions or data."""
DECISION_TOPICS = frozenset(
    topic_of(kind)
    for kind in (
        Customer.MessageAllowed,
        Customer.MessageDeferred,
        Customer.MessageSuppressed,
        Customer.MessageHeld,
    )
)
SCOPED_DECISIONS = 100
"""How many of the customer's latest decisions a reader limited to teams has theirs picked
from: the context's are the last `LAST_ITEMS` of their teams' among these."""
CLASSIFIED_TOPICS = frozenset({topic_of(events_of(Customer)["MessageClassified"])})
"""The events of the customer's classified messages."""
# Conversations read to find the open ones: the inbox lists the latest changed first.
_CONVERSATIONS_READ = 50


@dataclass(frozen=True, slots=True)
class SignalCount:
    """Signals of one type since the window's start, and the latest one of all time."""

    signal_type: str
    count: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class ContextIdentity:
    """An identity and whether its verification is too low to trust (`too_low`)."""

    type: str
    value: str
    verification: str
    too_low: bool


@dataclass(frozen=True, slots=True)
class CampaignIn:
    """A campaign the customer is in now, at which step."""

    campaign_id: UUID
    enrollment_id: UUID
    key: str | None
    name: str | None
    step: str | None
    entered_at: datetime


@dataclass(frozen=True, slots=True)
class OpenConversation:
    """A conversation not resolved, with its intent and sentiment as last classified."""

    conversation_id: UUID
    topic: str
    status: str
    intent: str | None
    sentiment: str | None
    team: str | None
    agent: str | None
    priority: str
    last_message_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClassifiedMessage:
    """One of the customer's latest messages as the classifier read it (never its text)."""

    message_id: str
    channel: str
    received_at: datetime
    intent: str
    confidence: float
    sentiment: str
    urgency: str
    unknown_reason: str | None = None  # why the intent is `unknown` (`not_text`)


@dataclass(frozen=True, slots=True)
class LastDecision:
    """A decision on a message to the customer: its outcome, and the rules that fired, why."""

    decision_id: str
    message_id: str
    outcome: str
    channel: str | None
    purpose: str | None
    origin: str
    decided_at: datetime
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class CustomerContext:
    """Who the customer is, what they did lately, what they talk to us about, and what was
    last decided about them. `customer_id` is the survivor; `merged_into` says the id asked for
    was merged into it."""

    customer_id: UUID
    merged_into: UUID | None
    tier: str | None
    profile: dict[str, str | None]
    attributes: dict[str, Any]
    identities: list[ContextIdentity]
    segments: list[str]
    suppressions: dict[str, str]
    signals_since: datetime
    signal_counts: list[SignalCount]
    last_signals: list[RecentSignal]
    orders: int
    last_orders: list[RecentSignal]
    campaigns: int
    in_campaigns: list[CampaignIn]
    open_conversations: int
    conversations: list[OpenConversation]
    decisions: list[LastDecision]
    classified: list[ClassifiedMessage] = field(default_factory=list)

    @property
    def unverified(self) -> bool:
        """Whether any identity is below `MINIMUM_VERIFICATION`."""
        return any(identity.too_low for identity in self.identities)

    def for_urgency(self) -> UrgencyContext:
        """What the classifier's urgency reads of the customer: the tier, the open
        conversations, and how many of them were last negative."""
        negative = sum(c.sentiment == Sentiment.NEGATIVE.value for c in self.conversations)
        return UrgencyContext(self.tier, self.open_conversations, negative)


class ContextQueries:
    """Builds a customer's context from the read models, a few indexed reads each bounded."""

    def __init__(
        self,
        customers: CustomerQueries,
        reads: ContextReads,
        directory: Directory,
        segments: SegmentReadModel,
        enrollments: EnrollmentReadModel,
        campaigns: CampaignReadModel,
        inbox: InboxReadModel,
        uows: UnitsOfWork,
        clock: Clock,
        order_signals: frozenset[str] = ORDER_SIGNALS,
    ) -> None:
        self.customers = customers
        self.reads = reads
        self.directory = directory
        self.segments = segments
        self.enrollments = enrollments
        self.campaigns = campaigns
        self.inbox = inbox
        self.uows = uows
        self.clock = clock
        self.order_signals = order_signals

    async def of(self, customer_id: UUID, scope: TeamScope = EVERY_TEAM) -> CustomerContext:
        """The context of the customer (of their survivor if merged); NotFound if unknown.
        A reader limited to teams (`scope`) gets only their teams' conversations and
        decisions; the rest is the customer's, everyone's."""
        customer = await self.customers.by_id(customer_id)
        about = customer.id
        tier_value = customer.attributes.get(await self._tier_attribute())
        since = self.clock.now() - RECENT
        counts = await self.directory.activity(about, since)
        campaigns = await self._campaigns(about)
        conversations = await self._open_conversations(about, scope.conversations)
        decided = await self._last_decisions([about, *customer.merged_from], scope)
        classified = await self.reads.last_decisions(
            [about, *customer.merged_from], CLASSIFIED_TOPICS, LAST_ITEMS
        )
        return CustomerContext(
            customer_id=about,
            merged_into=None if about == customer_id else about,
            tier=None if tier_value is None else str(tier_value),
            profile=dict(customer.profile),
            attributes=dict(customer.attributes),
            identities=[
                ContextIdentity(
                    i.type,
                    i.value,
                    i.verification,
                    not Verification(i.verification).at_least(MINIMUM_VERIFICATION),
                )
                for i in customer.identities
            ],
            segments=sorted(await self.segments.segments_of(about)),
            suppressions=dict(customer.suppressions),
            signals_since=since,
            signal_counts=[
                SignalCount(c.signal_type, c.count, c.last_at) for c in counts if c.count
            ],
            last_signals=await self.reads.last_signals(about, None, LAST_ITEMS),
            orders=sum(c.count for c in counts if c.signal_type in self.order_signals),
            last_orders=await self.reads.last_signals(about, self.order_signals, LAST_ITEMS),
            campaigns=len(campaigns),
            in_campaigns=campaigns[:LAST_ITEMS],
            open_conversations=len(conversations),
            conversations=conversations[:LAST_ITEMS],
            classified=[_classified(event) for event in classified],
            decisions=[_decision(event) for event in decided],
        )

    async def _tier_attribute(self) -> str:
        async with self.uows() as uow:
            found = await uow.repository(RoutingBook).get([ROUTING_BOOK_ID])
        book = found.get(ROUTING_BOOK_ID)
        return (
            book.current.document.tier_attribute if book is not None and book.versions else "tier"
        )

    async def _campaigns(self, customer_id: UUID) -> list[CampaignIn]:
        active = [
            view
            for view in await self.enrollments.of_customer(customer_id)
            if view.status is EnrollmentStatus.ACTIVE
        ]
        named = []
        for index, view in enumerate(active):
            # Only the shown campaigns are looked up by name; the rest are counted.
            detail = await self.campaigns.detail(view.campaign_id) if index < LAST_ITEMS else None
            summary = None if detail is None else detail.summary
            named.append(
                CampaignIn(
                    view.campaign_id,
                    view.enrollment_id,
                    None if summary is None else summary.key,
                    None if summary is None else summary.name,
                    view.step,
                    view.entered_at,
                )
            )
        return named

    async def _last_decisions(
        self, customer_ids: list[UUID], scope: TeamScope
    ) -> Sequence[StoredEvent]:
        if scope.sends is None:
            return await self.reads.last_decisions(customer_ids, DECISION_TOPICS, LAST_ITEMS)
        latest = await self.reads.last_decisions(customer_ids, DECISION_TOPICS, SCOPED_DECISIONS)
        return [e for e in latest if scope.sees_send(team_of_decision(e.data))][:LAST_ITEMS]

    async def _open_conversations(
        self, customer_id: UUID, visible: frozenset[str] | None
    ) -> list[OpenConversation]:
        page = await self.inbox.page(
            InboxFilter(customer_id=customer_id), visible, limit=_CONVERSATIONS_READ
        )
        return [
            OpenConversation(
                row.conversation_id,
                row.topic,
                row.status.value,
                row.intent,
                None if row.sentiment is None else row.sentiment.value,
                row.team,
                row.agent,
                row.priority.value,
                row.last_message_at,
            )
            for row in page.items
            if row.status is not ConversationStatus.RESOLVED
        ]


def _decision(event: StoredEvent) -> LastDecision:
    data: Any = event.data
    request = data.get("request") or {}
    return LastDecision(
        decision_id=str(data["decision_id"]),
        message_id=str(data["message_id"]),
        outcome=str(data["outcome"]),
        channel=data.get("channel"),
        purpose=request.get("purpose"),
        origin=str(data.get("origin", "")),
        decided_at=event.recorded_at,
        reasons=[str(fired.get("reason", "")) for fired in data.get("fired") or ()],
    )


def _classified(event: StoredEvent) -> ClassifiedMessage:
    data: Any = event.data
    return ClassifiedMessage(
        message_id=str(data["message_id"]),
        channel=str(data["channel"]),
        received_at=_moment(data["received_at"]),
        intent=str(data["intent"]),
        confidence=float(data["confidence"]),
        sentiment=str(data["sentiment"]),
        urgency=str(data["urgency"]),
        unknown_reason=data.get("unknown_reason"),
    )


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
