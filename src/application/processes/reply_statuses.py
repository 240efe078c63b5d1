"""Replies' provider statuses into their threads: what an agent sees of a reply is what the
provider said of it.

An agent's reply is a `Message` like any other (decided by the rules, dispatched, reported on
by webhooks) and an outbound message of its conversation (`Conversation.MessageSent`, which
starts it `queued`). Following both, the process notes each thread's outbound messages
(`ReplyMessages`) and, when a reply's stream moves (accepted, reported on, failed, expired,
withdrawn), records the status its message has come to in the conversation
(`Conversation.record_status`, a `DeliveryUpdated` the inbox and its live stream show).

It records the message's status as its stream says when the page is read, not each event's:
a reply dispatched before its thread recorded it (a commit apart) is told when `MessageSent` is
read, and an event read after its stream moved on tells nothing new, so a thread never goes
back from `delivered` to `sent`. Message events of streams that are no reply (a broadcast's)
are passed by undecoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.catalog import class_of, topic_of
from domain.conversation.aggregate import Conversation, Direction
from domain.message.aggregate import Message
from ports.inbox import conversation_events
from ports.processes import events_of, streams_of

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from ports.reply_statuses import ReplyStatusPorts

__all__ = ["CHORUS", "ReplyStatuses"]

CHORUS = "chorus"
"""Who `by` names on a status no provider gave (a dispatch that failed, an expiry)."""

_SENT: tuple[type[Any], ...] = conversation_events("MessageSent")
_MOVED: tuple[type[Any], ...] = tuple(
    class_of(f"{topic_of(Message)}.{kind}")
    for kind in ("Accepted", "StatusReported", "DeliveryFailed", "Expired", "Superseded")
)
"""What moves a message's status."""


class ReplyStatuses:
    """Tells each conversation the statuses of its replies. Not rebuildable: what it records
    are facts of the conversations."""

    name = "reply_statuses"
    handles: tuple[type[Any], ...] = (*_SENT, *_MOVED)
    follows: tuple[str, ...] = ()
    page_size: int | None = None

    async def handle(
        self, events: Sequence[CanMutateAggregate[UUID]], ports: ReplyStatusPorts
    ) -> None:
        sent: list[Any] = events_of(events, *_SENT)
        threaded = {
            event.message.message_id: event.originator_id
            for event in sent
            if event.message.direction is Direction.OUTBOUND
        }
        moved = set(streams_of(events, *_MOVED))
        replies = await ports.reply_messages.of(moved - threaded.keys()) if moved else {}
        if threaded:
            await ports.reply_messages.add(threaded)
        replies |= threaded
        if replies:
            await self._tell(replies, ports)

    async def _tell(self, replies: dict[UUID, UUID], ports: ReplyStatusPorts) -> None:
        """Records each reply's status, as its stream now says, in its conversation."""
        loaded = await ports.streams.load({*replies, *replies.values()})
        changed: dict[UUID, Conversation] = {}
        for message_id, thread in replies.items():
            message, conversation = loaded.get(message_id), loaded.get(thread)
            if not isinstance(message, Message) or not isinstance(conversation, Conversation):
                continue
            if message_id not in conversation.statuses:
                continue
            last = message.statuses[-1] if message.statuses else None
            by = CHORUS if last is None or last.source == "dispatch" else last.provider
            at = message.modified_on if last is None else last.at
            if conversation.record_status(message_id, message.status, by, at):
                changed[thread] = conversation
        if changed:
            await ports.conversations.save(list(changed.values()))
