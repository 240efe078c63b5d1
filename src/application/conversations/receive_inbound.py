"""An inbound message into its customer's thread, classified and routed, in one commit.

The customer (whom the message's identity resolved to at attribution; an unknown sender is a new
customer with an unverified identity) and the topic name the conversation
(`conversation_id(customer_id, topic)`), whatever the channel: email today and WhatsApp tomorrow
are one thread. The message's id is its signal's, so a message seen twice changes nothing. A
resolved conversation reopens. Intent and sentiment come from the classifier port, off the
event loop, and are recorded on the conversation and, in the same commit, on the customer
(`record_on_customers`). Then, if no agent holds it, it is routed: assigned to an agent, or
queued to a team. A reopened conversation stays with its agent if they can take it, else is
routed again. A message threaded otherwise than its signal said (a `topic` that is no key, in
the default topic) is noted in its thread, by Chorus, with why.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import uuid5

from application.conflicts import retry_on_conflict
from application.conversations.classified_on_customer import record_on_customers
from application.conversations.route_conversation import ROUTER, PageRouting, Router
from domain.assistant.intents import canonical_intent
from domain.conversation.aggregate import (
    CUSTOMER,
    DEFAULT_TOPIC,
    Conversation,
    conversation_id,
)
from domain.conversation.routing import URGENCIES
from domain.conversation.vocabulary import Sentiment
from domain.customer.classified import urgency_name
from domain.shared.keys import KEY_PATTERN
from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime
    from uuid import UUID

    from application.conversations.route_conversation import Load
    from domain.assistant.classification import Classification
    from domain.conversation.routing import RoutingDecision, RoutingPolicy
    from domain.policy.vocabulary import Channel
    from ports.classifier import Classifier
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.unit_of_work import UnitsOfWork

__all__ = ["CHORUS", "CLASSIFIER", "Inbound", "ReceiveInbound", "Threaded", "intent_key"]

CLASSIFIER = "classifier"
"""Who `by` names on a classification."""
CHORUS = "chorus"
"""Who `by` and the author name on Chorus's own note of how a message was threaded."""

_KEY = re.compile(KEY_PATTERN)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message a customer sent, as attribution recorded it."""

    message_id: UUID
    customer_id: UUID
    channel: Channel
    text: str
    received_at: datetime
    topic: str = DEFAULT_TOPIC
    is_text: bool = True
    """False when what the customer sent was no text (a number, a list, null): it is threaded
    with an empty `text` and classified `unknown` (`not_text`), never dropped."""
    aside: str | None = None
    """Why it is threaded otherwise than its signal said (a `topic` that is no key: in the
    default topic), noted in its thread for the agents when it is received."""

    @property
    def aside_id(self) -> UUID:
        """The id of the note of its `aside`: one per message, so it is noted once."""
        return uuid5(self.message_id, "aside")


@dataclass(frozen=True, slots=True)
class Threaded:
    """What became of an inbound message: its conversation, whether it was new to the thread,
    and the routing decision taken on it (None when none was needed or possible)."""

    conversation_id: UUID
    received: bool
    decision: RoutingDecision | None = None


def intent_key(classification: Classification) -> str | None:
    """The classified intent by its key (`request_refund`, `refund_not_showing_up` for
    Banking77's `Refund_not_showing_up`); None when unknown or not a key."""
    if not classification.known:
        return None
    intent = canonical_intent(classification.intent)
    return intent if _KEY.match(intent) else None


class ReceiveInbound:
    """Threads, classifies and routes one inbound message; exactly once per message id."""

    def __init__(
        self, uows: UnitsOfWork, classifier: Classifier, roster: Roster, clock: Clock
    ) -> None:
        self.uows = uows
        self.classifier = classifier
        self.router = Router(roster)
        self.clock = clock

    def page(self) -> PageRouting:
        """What several messages routed together share (the policy and the roster's load),
        read once for all of them; give it to each call."""
        return PageRouting(self.router, self.uows)

    async def __call__(self, inbound: Inbound, page: PageRouting | None = None) -> Threaded:
        (threaded,) = await self.many([inbound], page)
        return threaded

    async def many(
        self, messages: Sequence[Inbound], page: PageRouting | None = None
    ) -> list[Threaded]:
        """The messages in order (a conversation's in the order given), in one commit: what
        became of each. A conflict (a conversation written meanwhile, an agent's last place
        taken) threads them all again on fresh reads."""
        if not messages:
            return []
        # A model may take long on first use: never on the event loop. It classifies while
        # the routing's reads are on their way.
        classifying = asyncio.ensure_future(
            asyncio.to_thread(
                lambda: [self.classifier.classify(m.text if m.is_text else None) for m in messages]
            )
        )
        shared = page or self.page()
        threads = {conversation_id(m.customer_id, m.topic): m.customer_id for m in messages}

        async def attempt() -> list[Threaded]:
            try:
                return await threaded()
            except ConcurrencyConflict:
                shared.stale()  # someone took a place first: the loads are read again
                raise

        async def threaded() -> list[Threaded]:
            now = self.clock.now()
            policy, contexts = await self.router.contexts(threads, shared, now)
            classified = await classifying
            async with self.uows() as uow:
                conversations = uow.repository(Conversation)
                ids = [conversation_id(m.customer_id, m.topic) for m in messages]
                found = await conversations.get(list(dict.fromkeys(ids)))
                results = []
                for thread, inbound, classification in zip(ids, messages, classified, strict=True):
                    conversation = found.get(thread)
                    if conversation is None:
                        conversation = found[thread] = Conversation.start(
                            inbound.customer_id, CUSTOMER, now, inbound.topic
                        )
                    results.append(
                        self._thread(
                            conversation, inbound, classification, policy, contexts.get(thread),
                            shared, now,
                        )
                    )  # fmt: skip
                received = zip(messages, classified, results, strict=True)
                await record_on_customers(
                    uow, [(m, c) for m, c, threaded in received if threaded.received], now
                )
                conversations.add(*(c for c in found.values() if c.pending_events))
                return results

        try:
            return await retry_on_conflict(attempt)
        finally:
            if not classifying.done():  # a read failed first: the thread is let finish
                await asyncio.wait([classifying])
            if not classifying.cancelled():
                classifying.exception()  # seen: what a read raised first is what is raised

    def _thread(
        self,
        conversation: Conversation,
        inbound: Inbound,
        classified: Classification,
        policy: RoutingPolicy | None,
        load: Load | None,
        shared: PageRouting,
        now: datetime,
    ) -> Threaded:
        """One message into its conversation: received, classified, and routed if no agent
        holds it."""
        was_resolved = not conversation.is_open
        received = conversation.receive(
            inbound.message_id, inbound.channel, inbound.text, inbound.received_at, now
        )
        if not received:
            return Threaded(conversation.id, received=False)
        if inbound.aside is not None:
            conversation.note_once(inbound.aside_id, inbound.aside, CHORUS, now)
        # A message with no intent of its own ("any news?") keeps the thread's, and its urgency
        # unless it is more urgent itself.
        known = conversation.classification
        own = intent_key(classified)
        intent = own or (None if known is None or known.erased else known.intent)
        urgency = urgency_name(classified.urgency)
        kept = None if own is not None or known is None else known.urgency
        if kept is not None and URGENCIES.index(kept) > URGENCIES.index(urgency):
            urgency = kept
        conversation.classify(
            intent,
            Sentiment(classified.sentiment.value),
            CLASSIFIER,
            now,
            confidence=classified.confidence,
            unknown_reason=None if classified.known else str(classified.unknown_reason),
            urgency=urgency,
            sentiment_score=classified.sentiment_score,
        )
        decision = None
        if policy is not None and load is not None:
            load = shared.latest(load)
            if was_resolved and conversation.agent is not None:
                _back_to(conversation, load, now)
            if conversation.agent is None:
                decision = self.router.decide(conversation, policy, load, now)
                conversation.apply_routing(decision, ROUTER, now)
                shared.took(decision, conversation.channel_kind, now)
        return Threaded(conversation.id, received=True, decision=decision)


def _back_to(conversation: Conversation, load: Load, now: datetime) -> None:
    """A reopened conversation stays with its agent while they can take it, and are on its team
    (one taken off it since it was resolved gives it back to the team to route again)."""
    agent = conversation.agent
    kind = conversation.channel_kind
    if agent is None or kind is None:
        return
    team = next((t for t in load.teams if t.key == conversation.team), None)
    if team is not None and agent not in team.members:
        reason = f"reopened while {agent} is off team {team.key}: routed again"
        conversation.unassign(reason, ROUTER, now)
        return
    found = load.candidate(agent)
    if found is None or not found.can_take(kind, frozenset()):
        conversation.unassign(
            f"reopened while {agent} has no free {kind} capacity: routed again", ROUTER, now
        )
