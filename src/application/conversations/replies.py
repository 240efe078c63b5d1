"""An agent's reply: checked on the conversation, decided by the rules as a `service` message,
sent through the outbox, and recorded in the thread only when it may go.

The reply goes on the channel the customer last wrote on, unless the agent picks another. On a
channel whose service window is closed (WhatsApp: 24 hours after the customer's last message on
it) only an approved template may go: the answer says so and lists them (`ReplyNeedsTemplate`).
A reply on a channel no provider serves is refused before the rules decide it
(`ChannelUnavailable`): nothing is recorded, and the conversation stays as it was. A reply the
rules suppress, defer or hold for an operator's approval is answered with the
decision, and the thread is left as it was (a deferred one goes in when the scheduler lets it
go, a held one once its hold is settled: `application/approvals/reply_thread.py`); the request
carries the conversation's classified intent, which approval rules read. A reply to a resolved
conversation reopens it, back in its team's queue if its agent has no room to hold it open
again: a reply is never refused for capacity. The idempotency key is the send request's, scoped
to the conversation: a retry answers with the first decision and records nothing twice, and
records in the thread a reply its first try queued but did not record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from application.conflicts import retry_on_conflict
from application.conversations.actors import Actor, load_conversation
from application.conversations.reopening import room_to_reopen
from application.messages.compose import MessageContent
from domain.conversation.aggregate import Conversation, ConversationStatus, TemplateNeeded
from domain.message.aggregate import Message
from domain.message.content import Content
from domain.message.origin import reply_origin
from domain.policy.decision import Outcome, SendRequest
from domain.policy.vocabulary import Channel, Purpose
from domain.shared.errors import DomainError, InvalidValue

if TYPE_CHECKING:
    from collections.abc import Mapping
    from uuid import UUID

    from application.messages.request_message import RequestMessage
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.providers import ProviderDirectory
    from ports.rules import RuleSets
    from ports.templates import PublishedTemplates
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "REPLY_TEAM",
    "ChannelUnavailable",
    "Reply",
    "ReplyNeedsTemplate",
    "ReplyOutcome",
    "ReplyToConversation",
]

REPLY_TEAM = "conversations"
"""The sending team a reply is requested for when the conversation has no team yet."""

MAX_REPLY = 20_000


@dataclass(frozen=True, slots=True)
class Reply:
    """What the agent says: free text, or a stored template with its variables."""

    text: str | None = None
    template: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    locale: str | None = None
    subject: str | None = None  # an email's; `Re: <topic>` when left out
    channel: Channel | None = None  # None: the channel the customer last wrote on

    def __post_init__(self) -> None:
        if (self.text is None) == (self.template is None):
            raise InvalidValue("text", "give `text` or `template`, exactly one")
        if self.text is not None and not self.text.strip():
            raise InvalidValue("text", "a reply says something")
        if self.text is not None and len(self.text) > MAX_REPLY:
            raise InvalidValue("text", f"longer than {MAX_REPLY} characters")


class ReplyNeedsTemplate(DomainError):
    """The channel's service window is closed: only one of `templates` (approved for it) may
    go."""

    def __init__(self, needed: TemplateNeeded, templates: tuple[str, ...]) -> None:
        super().__init__(str(needed))
        self.channel = needed.channel
        self.last_inbound = needed.last_inbound
        self.templates = templates


class ChannelUnavailable(DomainError):
    """No provider serves the reply's channel: it could never be delivered. `served` are the
    channels a reply may go on; `picked` says whether the agent chose the channel (else it is
    the one the customer last wrote on)."""

    def __init__(self, channel: Channel, served: tuple[Channel, ...], *, picked: bool) -> None:
        choose = ", ".join(map(str, served)) or "none"
        whose = "" if picked else "the customer last wrote on it; "
        super().__init__(
            f"no provider serves {channel}: {whose}pick a channel that one serves ({choose})"
        )
        self.channel = channel
        self.served = served


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What became of a reply: the decision, and whether it went into the thread."""

    conversation_id: UUID
    channel: Channel
    message_id: UUID
    decision_id: UUID
    outcome: Outcome | None  # None: a retry, answered with the first decision (`decision_id`)
    sent: bool  # allowed, queued for delivery and recorded in the thread
    repeated: bool
    status: ConversationStatus


class ReplyToConversation:
    """Check on the conversation, decide and queue as a service message, record if allowed."""

    def __init__(
        self,
        uows: UnitsOfWork,
        rule_sets: RuleSets,
        clock: Clock,
        request_message: RequestMessage,
        templates: PublishedTemplates,
        roster: Roster,
        providers: ProviderDirectory,
    ) -> None:
        self.uows = uows
        self.providers = providers
        self.rule_sets = rule_sets
        self.clock = clock
        self.request_message = request_message
        self.templates = templates
        self.roster = roster

    async def __call__(
        self,
        conversation_id: UUID,
        actor: Actor,
        reply: Reply,
        idempotency_key: str | None = None,
    ) -> ReplyOutcome:
        rules = await self.rule_sets.current()
        async with self.uows() as uow:
            conversation = await load_conversation(uow.repository(Conversation), conversation_id)
        acting = actor.acting_on(conversation)
        try:
            channel = conversation.check_reply(
                acting, rules, self.clock.now(), reply.channel, reply.template
            )
        except TemplateNeeded as needed:
            raise ReplyNeedsTemplate(needed, await self.approved_for(needed.channel)) from None
        if not self.providers.for_channel(channel):
            served = tuple(c for c in Channel if self.providers.for_channel(c))
            raise ChannelUnavailable(channel, served, picked=reply.channel is not None)
        classified = conversation.classification
        decided = await self.request_message(
            conversation.customer_id,
            SendRequest(
                team=conversation.team or REPLY_TEAM,
                purpose=Purpose.SERVICE,
                channels=(channel,),
                approved_template=reply.template is not None,
                # What the reply answers, for the rules' approvals (docs/approvals.md).
                intent=None if classified is None else classified.intent,
                intent_confidence=None if classified is None else classified.confidence,
            ),
            idempotency_key=None
            if idempotency_key is None
            else f"conversation:{conversation_id}:{idempotency_key}",
            origin=reply_origin(conversation_id, acting.key),
            content=_content(reply, channel, conversation.topic),
        )
        outcome = None if decided.decision is None else decided.decision.outcome
        allowed = decided.decision is not None and decided.decision.allows_send
        sent_on = channel
        if decided.decision is not None and decided.decision.channel is not None:
            sent_on = decided.decision.channel

        async def record() -> ReplyOutcome:
            async with self.uows() as uow:
                conversations = uow.repository(Conversation)
                found = await load_conversation(conversations, conversation_id)
                in_thread = any(m.message_id == decided.message_id for m in found.messages)
                went, on = allowed, sent_on
                if decided.repeated and not in_thread:
                    # A retry of a reply whose thread was not told (the first try failed after
                    # its message was queued): its message says whether, and where, it went.
                    queued = await uow.repository(Message).get([decided.message_id])
                    message = queued.get(decided.message_id)
                    went, on = message is not None, sent_on if message is None else message.channel
                if went and not in_thread:
                    found.reply(
                        decided.message_id,
                        actor.acting_on(found),
                        reply.text or f"template {reply.template}",
                        rules,
                        self.clock.now(),
                        on,
                        reply.template,
                        room=await room_to_reopen(self.roster, found),
                    )
                    conversations.add(found)
                    in_thread = True
                return ReplyOutcome(
                    conversation_id,
                    on,
                    decided.message_id,
                    decided.decision_id,
                    outcome,
                    sent=in_thread,
                    repeated=decided.repeated,
                    status=found.status,
                )

        # A commit that lost the agent's last place to another is tried again, with no room.
        return await retry_on_conflict(record)

    async def approved_for(self, channel: Channel) -> tuple[str, ...]:
        """The templates whose latest version holds an approved (WhatsApp) template for the
        channel: what may go outside its service window."""
        approved = []
        for summary in await self.templates.summaries():
            template = await self.templates.get(summary.key)
            latest = None if template is None else template.latest
            if latest is not None and any(
                v.channel == channel and v.whatsapp_template for v in latest.variants
            ):
                approved.append(summary.key)
        return tuple(sorted(approved))


def _content(reply: Reply, channel: Channel, topic: str) -> MessageContent:
    if reply.template is not None:
        return MessageContent(
            template=reply.template, locale=reply.locale, variables=dict(reply.variables)
        )
    subject = reply.subject or (f"Re: {topic}" if channel is Channel.EMAIL else None)
    # The agent's words go as written: a variable, never template code of their own.
    return MessageContent(
        inline=Content(subject=_verbatim(subject), body="{{ vars.reply }}"),
        variables={"reply": reply.text, "subject": subject},
        locale=reply.locale,
    )


def _verbatim(subject: str | None) -> str | None:
    return None if subject is None else "{{ vars.subject }}"
