"""A customer's timeline as a reader limited to teams sees it: what the customer did, and their
profile, consents, segments and journeys, are everyone's; another team's decisions, approvals,
messages and conversations are left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from application.queries.customer_context import DECISION_TOPICS
from application.queries.team_scope import team_of_decision
from domain.catalog import topic_of
from domain.conversation.aggregate import Conversation
from domain.customer.aggregate import Customer
from domain.message.aggregate import Message
from domain.shared.topics import events_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from application.queries.customers import CustomerQueries
    from application.queries.team_scope import TeamScope
    from ports.approvals import ApprovalsRead
    from ports.customers import StoredEvent
    from ports.delivery import DeliveryStore
    from ports.inbox import InboxReadModel

__all__ = ["CustomerTimeline", "TimelineView"]

_APPROVAL_SETTLED = topic_of(events_of(Customer)["ApprovalSettled"])
_MESSAGE_QUEUED = topic_of(Message.Queued)
_OF_A_MESSAGE = Message.stored_as.topic("")
_OF_A_CONVERSATION = Conversation.stored_as.topic("")


@dataclass(frozen=True, slots=True)
class TimelineView:
    """One page, newest first; `customer_id` is the survivor of a merged id."""

    customer_id: UUID
    events: list[StoredEvent]
    next_before: int | None


class CustomerTimeline:
    """Pages of a customer's timeline, filtered to what a reader's `TeamScope` sees.

    A send's team is its request's (the decisions, `Message.Queued`); an approval's, its held
    message's; a conversation's, the team holding it now (as `GET /v1/conversations/{id}`
    decides). The page is cut before it is filtered, so a reader limited to teams may get
    fewer events than `limit` and still have more after them (`next_before`)."""

    def __init__(
        self,
        customers: CustomerQueries,
        deliveries: DeliveryStore,
        approvals: ApprovalsRead,
        inbox: InboxReadModel,
    ) -> None:
        self.customers = customers
        self.deliveries = deliveries
        self.approvals = approvals
        self.inbox = inbox

    async def page(
        self, customer_id: UUID, scope: TeamScope, *, limit: int, before: int | None
    ) -> TimelineView:
        """NotFound for an unknown customer."""
        survivor, page = await self.customers.timeline(customer_id, limit=limit, before=before)
        events = list(page.events)
        if not scope.every_team:
            events = await _Sorting(self, events).visible(scope)
        return TimelineView(survivor, events, page.next_before)


class _Sorting:
    """The teams of one page's events, each looked up once."""

    def __init__(self, timeline: CustomerTimeline, events: Sequence[StoredEvent]) -> None:
        self.timeline = timeline
        self.events = events
        self.send_teams: dict[str, str | None] = {}  # message id -> its request's team
        self.conversation_teams: dict[UUID, str | None] = {}
        for event in events:
            if event.topic in DECISION_TOPICS:
                self.send_teams[str(event.data["message_id"])] = team_of_decision(event.data)
            elif event.topic == _MESSAGE_QUEUED:
                self.send_teams[str(event.stream_id)] = _text(event.data.get("team"))

    async def visible(self, scope: TeamScope) -> list[StoredEvent]:
        return [event for event in self.events if await self._sees(scope, event)]

    async def _sees(self, scope: TeamScope, event: StoredEvent) -> bool:
        topic = event.topic
        if topic.startswith(_OF_A_CONVERSATION):
            if scope.conversations is None:
                return True
            return scope.sees_conversation(await self._conversation_team(event.stream_id))
        if scope.sends is None:
            return True
        if topic.startswith(_OF_A_MESSAGE):
            return scope.sees_send(await self._message_team(str(event.stream_id)))
        if topic in DECISION_TOPICS:
            return scope.sees_send(team_of_decision(event.data))
        if topic == _APPROVAL_SETTLED:
            return scope.sees_send(await self._approval_team(event.data))
        return True  # the customer's own: profile, consents, signals, segments, journeys

    async def _message_team(self, message_id: str) -> str | None:
        if message_id not in self.send_teams:
            message = await self.timeline.deliveries.get(UUID(message_id))
            self.send_teams[message_id] = None if message is None else message.team
        return self.send_teams[message_id]

    async def _approval_team(self, data: Mapping[str, object]) -> str | None:
        message_id = str(data["message_id"])
        if message_id not in self.send_teams:
            record = await self.timeline.approvals.get(UUID(str(data["approval_id"])))
            self.send_teams[message_id] = None if record is None else record.team
        return self.send_teams[message_id]

    async def _conversation_team(self, conversation_id: UUID) -> str | None:
        if conversation_id not in self.conversation_teams:
            row = await self.timeline.inbox.get(conversation_id)
            self.conversation_teams[conversation_id] = None if row is None else row.team
        return self.conversation_teams[conversation_id]


def _text(value: object) -> str | None:
    return None if value is None else str(value)
