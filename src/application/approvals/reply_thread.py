"""A reply the rules did not let go at once, into its conversation when it goes or never will
(docs/approvals.md, docs/conversations.md).

A reply the rules let go at once is recorded in its thread by `ReplyToConversation`; one they
defer waits in the scheduler, and one they hold waits in /v1/approvals, both outside the thread.
A deferred reply the scheduler lets go later is recorded as the agent's outbound message in the
commit of that decision (`by` the agent). When a held reply's hold is settled, in the commit
that records the verdict and the decision it leads to:

- approved or edited, and allowed by the rules: the reply (as approved, edited content
  included) is recorded as the agent's outbound message (`Conversation.MessageSent`, `by` the
  operator), reopening a resolved conversation. Also when a reply approved but deferred (quiet
  hours) is allowed later by the scheduler: its request carries the approval.
- rejected, or its hold expired: an internal note (`Conversation.NoteAdded`, its id the
  reply's) says so, with the reply's text, for the agents only.

A message that is no conversation reply (an API or campaign send) is left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conversations.reopening import room_to_reopen
from domain.conversation.aggregate import Conversation
from domain.message.origin import replier_of, thread_of

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

    from domain.policy.decision import Decision, SendRequest
    from domain.policy.vocabulary import Channel
    from ports.conversation_roster import Roster
    from ports.delivery import Delivery
    from ports.unit_of_work import UnitOfWork

__all__ = ["reply_into_thread", "reply_text", "unsent_reply_into_thread"]

REPLIER = "agent"
"""The author of a reply whose origin names no agent (replies before they named theirs)."""


def reply_text(delivery: Delivery | None, channel: Channel | None) -> str:
    """What the reply says on its channel (any channel's, failing that): its body, subject or
    template."""
    if delivery is None or not delivery.contents:
        return "(no content)"
    rendered = delivery.contents.get(channel) if channel is not None else None
    if rendered is None:
        rendered = next(iter(delivery.contents.values()))
    content = rendered.content
    found = content.body or content.subject or content.whatsapp_template
    if found:
        return found
    return f"template {rendered.template}" if rendered.template else "(no content)"


async def reply_into_thread(
    uow: UnitOfWork,
    origin: str,
    message_id: UUID,
    request: SendRequest,
    delivery: Delivery | None,
    decision: Decision,
    at: datetime,
    roster: Roster | None = None,
) -> bool:
    """Records a reply the rules allowed in its conversation, as its agent's, `by` whoever
    approved it last (the agent, if nobody had to); reopening a resolved conversation, in its
    team's queue if its agent has no room now (`roster`). False when the message is no reply,
    was not allowed, or is in the thread already."""
    thread = thread_of(origin)
    if thread is None or not decision.allows_send:
        return False
    channel = decision.channel or (request.channels[0] if request.channels else None)
    if channel is None:
        return False
    conversations = uow.repository(Conversation)
    conversation = (await conversations.get([thread])).get(thread)
    if conversation is None:
        return False
    rendered = None if delivery is None else delivery.contents.get(channel)
    author = replier_of(origin) or REPLIER
    recorded = conversation.record_reply_sent(
        message_id,
        author,
        reply_text(delivery, channel),
        channel,
        None if rendered is None else rendered.template,
        request.approved[-1].by if request.approved else author,
        at,
        room=await room_to_reopen(roster, conversation),
    )
    if recorded:
        conversations.add(conversation)
    return recorded


async def unsent_reply_into_thread(
    uow: UnitOfWork,
    origin: str,
    message_id: UUID,
    delivery: Delivery | None,
    verdict: str,
    by: str,
    note: str | None,
    at: datetime,
) -> bool:
    """Notes in its conversation a held reply that will never go (`verdict`: rejected or
    expired); False when the message is no reply or was noted already."""
    thread = thread_of(origin)
    if thread is None:
        return False
    conversations = uow.repository(Conversation)
    conversation = (await conversations.get([thread])).get(thread)
    if conversation is None:
        return False
    why = f"{verdict} by {by}" + (f": {note}" if note else "")
    text = f"Reply not sent ({why}): {reply_text(delivery, None)}"
    noted = conversation.note_unsent_reply(message_id, text, by, at)
    if noted:
        conversations.add(conversation)
    return noted
