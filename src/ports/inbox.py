"""The inbox: one row a conversation, as agents list and watch them, folded from the
Conversation events (`InboxRow.started`, `InboxRow.folding`); its SLA deadlines, kept by the
SLA timers process; and the changes a live stream waits for.

Each row carries `seq`, the number of conversation events the projection had applied when it
last changed the row: rows change in `seq` order, a rebuild gives every row the same `seq` as
the live projection did, and a stream resumes after the last `seq` its client saw.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from domain.catalog import class_of, topic_of
from domain.conversation.aggregate import Conversation, ConversationStatus, Direction
from domain.conversation.sla import SlaKind
from domain.conversation.vocabulary import Priority, Sentiment
from domain.policy.vocabulary import Channel
from domain.shared.personal import ERASED

if TYPE_CHECKING:
    from collections.abc import Collection

    from eventsourcing.domain import CanMutateAggregate

__all__ = [
    "CONVERSATION_EVENT_NAMES",
    "InboxChanges",
    "InboxFilter",
    "InboxPage",
    "InboxReadModel",
    "InboxRow",
    "InboxStatus",
    "InvalidInboxCursor",
    "SlaDeadline",
    "conversation_events",
    "inbox_cursor",
    "seq_of",
]

CONVERSATION_EVENT_NAMES = (
    "Started", "MessageReceived", "MessageSent", "DeliveryUpdated", "NoteAdded", "Snoozed",
    "Woke", "Resolved", "Reopened", "MarkedWaiting", "Assigned", "Transferred", "Unassigned",
    "Queued", "Classified", "PriorityChanged", "Tagged", "Untagged", "SlaBreached",
    "ReplyUndelivered",
)  # fmt: skip
"""Every event of a conversation: each changes its inbox row, if only its `updated_at`."""


def conversation_events(*names: str) -> tuple[type[Any], ...]:
    """The Conversation's event classes of these names (every one when none are named)."""
    prefix = topic_of(Conversation) + "."
    return tuple(class_of(prefix + name) for name in names or CONVERSATION_EVENT_NAMES)


class InboxStatus(StrEnum):
    """What `?status=` asks for: a conversation's status, or `unresolved` for any but
    resolved (open, waiting on either side, snoozed)."""

    OPEN = "open"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    WAITING_ON_US = "waiting_on_us"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"

    def holds(self, status: ConversationStatus) -> bool:
        if self is InboxStatus.UNRESOLVED:
            return status is not ConversationStatus.RESOLVED
        return str(status) == self.value


class InvalidInboxCursor(ValueError):
    """An inbox cursor this service did not hand out."""


@dataclass(frozen=True, slots=True)
class SlaDeadline:
    """When the conversation's running SLA clock breaches, for which answer; `breached` once
    the timer fired with nobody answering (`due` is then the instant it breached)."""

    sla: SlaKind
    due: datetime
    breached: bool


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A conversation as the inbox lists it. `channel` is the one the customer last wrote on
    (else the last one used), `channels` every channel of the thread in first-use order."""

    conversation_id: UUID
    customer_id: UUID
    topic: str
    status: ConversationStatus
    team: str | None
    agent: str | None
    priority: Priority
    intent: str | None
    sentiment: Sentiment | None
    channel: Channel | None
    channels: tuple[Channel, ...]
    tags: tuple[str, ...]
    messages: int
    notes: int
    breaches: int
    last_message_at: datetime | None
    awaiting_since: datetime | None
    snoozed_until: datetime | None
    started_at: datetime
    updated_at: datetime
    seq: int
    deadline: SlaDeadline | None = None  # read from the SLA timers, not folded

    @classmethod
    def started(cls, event: Any, seq: int) -> InboxRow:
        """The row a Started event makes."""
        return cls(
            conversation_id=event.originator_id,
            customer_id=event.customer_id,
            topic=event.topic,
            status=ConversationStatus.OPEN,
            team=None,
            agent=None,
            priority=Priority.NORMAL,
            intent=None,
            sentiment=None,
            channel=None,
            channels=(),
            tags=(),
            messages=0,
            notes=0,
            breaches=0,
            last_message_at=None,
            awaiting_since=None,
            snoozed_until=None,
            started_at=event.timestamp,
            updated_at=event.timestamp,
            seq=seq,
        )

    def folding(self, event: CanMutateAggregate[UUID], seq: int) -> InboxRow:
        """The row after one more event of its conversation (any but Started)."""
        change: dict[str, Any] = {"updated_at": event.timestamp, "seq": seq}
        e: Any = event
        kind = type(event).__name__
        if kind in ("MessageReceived", "MessageSent"):
            message = e.message
            inbound = message.direction is Direction.INBOUND
            change |= {
                "messages": self.messages + 1,
                "last_message_at": message.at,
                "channels": tuple(dict.fromkeys((*self.channels, message.channel))),
                "snoozed_until": None,
            }
            if inbound:
                change |= {
                    "channel": message.channel,
                    "awaiting_since": self.awaiting_since or message.at,
                    "status": ConversationStatus.WAITING_ON_US,
                }
            else:
                change |= {
                    "channel": self.channel or message.channel,
                    "awaiting_since": None,
                    "status": ConversationStatus.WAITING_ON_CUSTOMER,
                }
        elif kind == "NoteAdded":
            change["notes"] = self.notes + 1
        elif kind == "Snoozed":
            change |= {"status": ConversationStatus.SNOOZED, "snoozed_until": e.until}
        elif kind == "Woke":
            change |= {"status": ConversationStatus.WAITING_ON_US, "snoozed_until": None}
        elif kind == "Resolved":
            change |= {"status": ConversationStatus.RESOLVED, "snoozed_until": None}
            change["awaiting_since"] = None
        elif kind == "Reopened":
            change["status"] = ConversationStatus.WAITING_ON_US
        elif kind == "ReplyUndelivered":
            change |= {"status": ConversationStatus.WAITING_ON_US}
            change["awaiting_since"] = e.awaiting_since
        elif kind == "MarkedWaiting":
            change |= {"status": ConversationStatus(e.status), "snoozed_until": None}
        elif kind in ("Assigned", "Transferred"):
            change |= {"team": e.team, "agent": e.agent}
        elif kind == "Unassigned":
            change["agent"] = None
        elif kind == "Queued":
            change |= {"team": e.team, "agent": None}
        elif kind == "Classified":
            erased = e.sentiment is None or e.sentiment == ERASED
            sentiment = None if erased else Sentiment(e.sentiment)
            change |= {"intent": e.intent, "sentiment": sentiment}
        elif kind == "PriorityChanged":
            change["priority"] = Priority(e.priority)
        elif kind == "Tagged":
            change["tags"] = tuple(sorted(set(self.tags) | set(e.tags)))
        elif kind == "Untagged":
            change["tags"] = tuple(sorted(set(self.tags) - set(e.tags)))
        elif kind == "SlaBreached":
            change["breaches"] = self.breaches + 1
        return dataclasses.replace(self, **change)

    def erased(self) -> InboxRow:
        """The row once its customer is erased (`Customer.Erased`): its intent `[erased]` (if
        it had one) and no sentiment, as a rebuild folds its sealed `Classified` events then;
        `seq` and `updated_at` stay, since no event of the conversation changed it."""
        intent = None if self.intent is None else ERASED
        return dataclasses.replace(self, intent=intent, sentiment=None)

    def with_deadline(self, deadline: SlaDeadline | None) -> InboxRow:
        return dataclasses.replace(self, deadline=deadline)


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What a list or a stream asks for; every criterion given must hold. `breach_before`
    keeps the conversations whose SLA clock breaches (or breached) by then; `assigned` the
    unresolved ones an agent holds (True) or nobody does (False: queued, or in no team yet)."""

    team: str | None = None
    agent: str | None = None
    status: InboxStatus | None = None
    channel: Channel | None = None
    intent: str | None = None
    priority: Priority | None = None
    breach_before: datetime | None = None
    customer_id: UUID | None = None
    assigned: bool | None = None
    tag: str | None = None

    def holds(self, row: InboxRow, visible: Collection[str] | None) -> bool:
        """Whether the row is listed to someone who sees the teams `visible` (None: all)."""
        deadline = row.deadline
        return (
            (visible is None or (row.team is not None and row.team in visible))
            and (self.team is None or row.team == self.team)
            and (self.agent is None or row.agent == self.agent)
            and (self.status is None or self.status.holds(row.status))
            and (self.channel is None or self.channel in row.channels)
            and (self.intent is None or row.intent == self.intent)
            and (self.priority is None or row.priority is self.priority)
            and (self.customer_id is None or row.customer_id == self.customer_id)
            and (self.tag is None or self.tag in row.tags)
            and (
                self.breach_before is None
                or (deadline is not None and deadline.due <= self.breach_before)
            )
            and (
                self.assigned is None
                or (
                    row.status is not ConversationStatus.RESOLVED
                    and (row.agent is not None) is self.assigned
                )
            )
        )


def inbox_cursor(seq: int) -> str:
    """The cursor of a page that ends at the row changed at `seq`."""
    return base64.urlsafe_b64encode(seq.to_bytes(8, "big")).decode().rstrip("=")


def seq_of(cursor: str | None) -> int | None:
    """The `seq` a cursor of `inbox_cursor` stands for; InvalidInboxCursor if none."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (ValueError, binascii.Error):
        raw = b""
    seq = int.from_bytes(raw, "big", signed=True)
    if len(raw) != 8 or seq < 0:
        raise InvalidInboxCursor(f"{cursor!r} is not a cursor from a previous page")
    return seq


@dataclass(frozen=True, slots=True)
class InboxPage:
    """Rows, most recently changed first; `high_water` is the inbox's last `seq` when read:
    a stream opened after it (`Last-Event-ID`) misses no change made since."""

    items: list[InboxRow]
    next_cursor: str | None
    high_water: int


class InboxReadModel(Protocol):
    """The inbox projection, with each row's SLA deadline."""

    async def page(
        self,
        where: InboxFilter,
        visible: Collection[str] | None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> InboxPage:
        """The rows `where` holds for whoever sees the teams `visible` (None: every team),
        most recently changed first; `after` is the previous page's `next_cursor`."""
        ...

    async def get(self, conversation_id: UUID) -> InboxRow | None:
        """One row, if the projection has it."""
        ...

    async def changed_since(
        self, seq: int, where: InboxFilter, visible: Collection[str] | None, limit: int = 500
    ) -> list[InboxRow]:
        """The rows changed after `seq` that `where` holds, in the order they changed."""
        ...

    async def high_water(self) -> int:
        """The `seq` of the last change applied; 0 for an empty inbox."""
        ...


class InboxChanges(Protocol):
    """Wakes those who stream the inbox when the projection applies a change."""

    async def wait_beyond(self, seq: int, at_most: float) -> None:
        """Returns once the inbox may have changed after `seq`, or after `at_most` seconds."""
        ...
