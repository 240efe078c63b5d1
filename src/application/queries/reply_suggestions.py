"""Suggested replies to a conversation's last inbound message: the templates tagged with its
intent, rendered with the customer's context and shaped to the channel they last wrote on.

A suggestion is only read: an agent sends a reply through the reply command, so nothing leaves
without an agent's (or a rule's) consent. A template that cannot be rendered for this customer
is left out with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from application.queries.inbox import ConversationHidden
from application.templates.shaped_text import ShapedText, read_by, shaped_text
from domain.conversation.aggregate import Conversation, Direction
from domain.shared.errors import DomainError, NotFound
from ports.templates import RenderAsk

if TYPE_CHECKING:
    from collections.abc import Collection
    from uuid import UUID

    from application.queries.customer_context import CustomerContext
    from domain.policy.vocabulary import Channel
    from domain.templates.aggregate import TemplateVersion
    from ports.rules import RuleSets
    from ports.templates import PublishedTemplates, Templates, TemplateVariables
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "DEFAULT_SUGGESTIONS",
    "CustomerContexts",
    "LeftOut",
    "ReplySuggestions",
    "SuggestReplies",
    "Suggestion",
    "customer_facts",
    "suggestion_scope",
]

DEFAULT_SUGGESTIONS = 3


class CustomerContexts(Protocol):
    """A customer's context (ContextQueries)."""

    async def of(self, customer_id: UUID) -> CustomerContext: ...


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A reply an agent may send: from which template version, and its text shaped for the
    channel with the facts of the customer's context it read."""

    template: str
    version: int
    reply: ShapedText


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A template tagged with the intent that could not be suggested, and why."""

    template: str
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReplySuggestions:
    """For the last inbound message: its intent and confidence, and the suggestions."""

    conversation_id: UUID
    message_id: UUID | None
    intent: str | None
    confidence: float | None
    channel: Channel | None
    suggestions: tuple[Suggestion, ...]
    left_out: tuple[LeftOut, ...]


def customer_facts(context: CustomerContext) -> dict[str, Any]:
    """The customer as a send's template sees them (profile and attributes, a profile field
    winning, and `id`), with their `tier`."""
    customer: dict[str, Any] = {**context.attributes, **context.profile}
    customer["id"] = str(context.customer_id)
    if context.tier is not None:
        customer.setdefault("tier", context.tier)
    return customer


def suggestion_scope(context: CustomerContext, intent: str) -> dict[str, Any]:
    """What a suggestion's template sees: `customer` (`customer_facts`), and `vars` of the
    context: the `intent`, `orders` in the last 30 days, `open_conversations`, `segments`,
    `last_order_at`."""
    customer = customer_facts(context)
    variables: dict[str, Any] = {
        "intent": intent,
        "orders": context.orders,
        "open_conversations": context.open_conversations,
        "segments": list(context.segments),
    }
    if context.last_orders:
        variables["last_order_at"] = context.last_orders[0].occurred_at.isoformat()
    return {"customer": customer, "vars": variables}


class SuggestReplies:
    """Suggestions for a conversation's last inbound message (interactor)."""

    def __init__(
        self,
        uows: UnitsOfWork,
        published: PublishedTemplates,
        templates: Templates,
        variables: TemplateVariables,
        contexts: CustomerContexts,
        rules: RuleSets,
    ) -> None:
        self.uows = uows
        self.published = published
        self.templates = templates
        self.variables = variables
        self.contexts = contexts
        self.rules = rules

    async def __call__(
        self,
        conversation_id: UUID,
        visible: Collection[str] | None,
        limit: int = DEFAULT_SUGGESTIONS,
    ) -> ReplySuggestions:
        """NotFound for no such conversation, ConversationHidden for another team's."""
        async with self.uows() as uow:
            found = await uow.repository(Conversation).get([conversation_id])
        conversation = found.get(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation {conversation_id}")
        if visible is not None and conversation.team not in visible:
            raise ConversationHidden(conversation_id, conversation.team)
        inbound = [m for m in conversation.messages if m.direction is Direction.INBOUND]
        last = inbound[-1] if inbound else None
        known = conversation.classification
        intent = known.intent if known is not None else None
        confidence = known.confidence if known is not None else None
        channel = conversation.last_channel or (last.channel if last is not None else None)
        nothing = ReplySuggestions(
            conversation_id,
            None if last is None else last.message_id,
            intent,
            confidence,
            channel,
            (),
            (),
        )
        if last is None or intent is None or channel is None:
            return nothing
        tagged = await self._tagged(intent)
        if not tagged:
            return nothing
        try:
            context = await self.contexts.of(conversation.customer_id)
        except NotFound as unknown:
            reason = f"the customer's context cannot be read: {unknown}"
            left = tuple(LeftOut(key, version.number, reason) for key, version in tagged)
            return ReplySuggestions(
                conversation_id, last.message_id, intent, confidence, channel, (), left
            )
        scope = suggestion_scope(context, intent)
        locale = context.profile.get("locale")
        tone = (await self.rules.current()).tone_for(channel)
        # A template with no variant for the channel lends its first channel's text, shaped.
        asks = [
            RenderAsk(
                channel if channel in version.channels else version.channels[0],
                scope,
                key,
                locale,
                version.number,
            )
            for key, version in tagged
        ]
        rendered = await self.templates.render_all(asks)
        suggestions: list[Suggestion] = []
        left_out: list[LeftOut] = []
        for (key, version), ask, answer in zip(tagged, asks, rendered, strict=True):
            if isinstance(answer, DomainError):
                left_out.append(LeftOut(key, version.number, str(answer)))
                continue
            read = read_by(self.variables, version, ask.channel, answer.locale)
            reply = shaped_text(channel, ask.channel, answer, tone, read, scope)
            if reply is None:
                left_out.append(
                    LeftOut(key, version.number, f"its {ask.channel} variant has no text to reply")
                )
                continue
            if len(suggestions) < limit:
                suggestions.append(Suggestion(key, version.number, reply))
        return ReplySuggestions(
            conversation_id,
            last.message_id,
            intent,
            confidence,
            channel,
            tuple(suggestions),
            tuple(left_out),
        )

    async def _tagged(self, intent: str) -> list[tuple[str, TemplateVersion]]:
        """The latest version of each template tagged with the intent, by key."""
        tagged = []
        for summary in await self.published.summaries():
            template = await self.published.get(summary.key)
            latest = None if template is None else template.latest
            if latest is not None and intent in latest.intents:
                tagged.append((summary.key, latest))
        return tagged
