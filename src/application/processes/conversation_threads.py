"""Inbound messages into threads, routed; queues drained as capacity frees.

An inbound message is a recorded `message.received` signal (provider webhooks and NATS make
them; attribution puts each on its customer, registering an unknown sender as a new customer
with an unverified identity). Each goes into its customer's conversation, classified and routed
(`ReceiveInbound`), exactly once: its id in the thread is its signal's, so a page read again
changes nothing. A `text` that is no text is still a message: classified `unknown`
(`not_text`). What the edge refuses in a message (`domain.conversation.inbound`) never parks one
recorded all the same: a `topic` that is no key threads it in the default topic, with Chorus's
note in the thread saying why; one with no channel Chorus knows is logged, with why, and passed
by (it has no channel to show or answer it on; it stays on its customer's timeline). One that
fails is retried with its page, then parked (ADR 7), and the lane goes on.

A page's messages are threaded a batch of conversations (`batch`) in one commit, several
batches at once (`concurrency`), each conversation's messages in log order: a commit a message
would cost the lane a durable commit, its reads and a wake of every lane each time. The page's
routings share one read of the routing document and of the roster's loads (`PageRouting`), kept
current in memory as each takes a place. Routings racing for an agent's last place are settled by
the database (a commit over capacity fails, and routes again on loads read afresh), as between
workers.

An agent taken off a team (`Team.MemberRemoved`) has the team's conversations they hold
released back to its queue (`ReleaseDeparted`), each with the reason, before the page's drain.

Capacity that frees or comes back (an agent available again, a capacity raised, a member
added or taken off; a conversation resolved, transferred, unassigned) and a conversation queued
start a drain of every queue (`DrainQueues`), once per page, so nothing waits while someone
could take it. All record through units of work of their own (a conversation's load changes in
the commit of its events), each change checked against the conversation as committed, so a
page read again records nothing twice; the runner's transaction keeps only the position.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from application.conversations.departures import Departure
from application.conversations.receive_inbound import Inbound
from domain.catalog import class_of, topic_of
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import DEFAULT_TOPIC, Conversation, conversation_id
from domain.conversation.inbound import (
    INBOUND_MESSAGE_SIGNALS,
    channel_fault,
    known_channel,
    topic_fault,
)
from domain.signals.aggregate import Signal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from application.conversations.departures import ReleaseDeparted
    from application.conversations.drain_queues import DrainQueues
    from application.conversations.receive_inbound import ReceiveInbound

__all__ = ["BATCH", "CONCURRENCY", "FREEING", "LEAVING", "ConversationThreads", "inbound_of"]

BATCH = 50
"""How many conversations go into one commit: a page's messages commit a batch at a time, so a
steady trickle of messages makes one commit a page rather than one a message."""
CONCURRENCY = 6
"""How many batches a page threads at once; each holds a database connection while it commits,
and the worker's pool is shared with every lane."""


def _events_of(aggregate: type, *kinds: str) -> tuple[type[Any], ...]:
    return tuple(class_of(f"{topic_of(aggregate)}.{kind}") for kind in kinds)


LEAVING: tuple[type[Any], ...] = _events_of(Team, "MemberRemoved")
"""An agent taken off a team: the team's conversations they hold go back to its queue."""

FREEING: tuple[type[Any], ...] = (
    *_events_of(Agent, "PresenceChanged", "CapacityChanged", "SkillsChanged"),
    *_events_of(Team, "MemberAdded"),
    *LEAVING,
    *_events_of(Conversation, "Resolved", "Transferred", "Unassigned", "Queued"),
)
"""Events after which a queued conversation may find someone to take it."""

_SHOWN = 80
"""Characters of a topic that is no key shown in the note that says so."""

log = structlog.get_logger("chorus.conversations")


def inbound_of(event: Signal.Recorded) -> Inbound | str | None:
    """The message a recorded signal carries: `message.received` with a known `channel`, its
    `text` (and optionally a `topic`); None for any other signal. A message with no text (none
    given, `null`, `12345`, a list; a WhatsApp order or image without a caption, whose
    `content_type` says what it was) is still the customer's message: threaded with no text, or
    `[<content_type>]`, and classified `unknown` (`not_text`), never forced into an intent.

    The edge refuses a message whose channel or topic is wrong (`domain.conversation.inbound`);
    one recorded all the same (before those checks, or not through the edge) is never parked:
    a `topic` that is no key is threaded in the default topic, with the reason as its `aside`;
    one with no channel Chorus knows cannot be threaded (no channel to show it on, nor to reply
    on): why, as a string. It stays on its customer's timeline."""
    if event.signal_type not in INBOUND_MESSAGE_SIGNALS:
        return None
    properties = event.properties
    given = properties.get("channel")
    channel = known_channel(given)
    if channel is None:
        return f"its channel {channel_fault(given)}"
    text = properties.get("text")
    content_type = properties.get("content_type")
    shown = f"[{content_type}]" if isinstance(content_type, str) and content_type else ""
    topic, aside = _topic_of(properties.get("topic"))
    return Inbound(
        message_id=event.originator_id,
        customer_id=event.customer_id,
        channel=channel,
        text=text if isinstance(text, str) else shown,
        received_at=event.occurred_at,
        topic=topic,
        is_text=isinstance(text, str),
        aside=aside,
    )


def _topic_of(given: object) -> tuple[str, str | None]:
    """The topic a message is threaded in, and why not the one it named if it is not: a name
    that is no key (a number names the topic it writes, as it always has) is the default."""
    if given is None:
        return DEFAULT_TOPIC, None
    named = str(given)
    fault = topic_fault(named)
    if fault is None:
        return named, None
    cut = named if len(named) <= _SHOWN else named[:_SHOWN] + "…"
    return DEFAULT_TOPIC, (
        f"The message named the topic {cut!r}, which {fault}: "
        f"threaded in the default topic {DEFAULT_TOPIC!r}."
    )


class ConversationThreads:
    """Threads and routes inbound messages; releases the conversations of agents taken off a
    team; drains queues when capacity frees. Reads the customers' facts and segment memberships
    for routing (`follows`)."""

    name = "conversation_threads"
    handles: tuple[type[Any], ...] = (Signal.Recorded, *FREEING)
    follows = ("customer_directory", "signal_activity", "segment_members")
    page_size: int | None = None

    def __init__(
        self,
        receive: ReceiveInbound,
        drain: DrainQueues,
        release: ReleaseDeparted,
        concurrency: int = CONCURRENCY,
        batch: int = BATCH,
    ) -> None:
        self.receive = receive
        self.drain = drain
        self.release = release
        self.concurrency = concurrency
        self.batch = batch

    async def handle(self, events: Sequence[CanMutateAggregate[UUID]], ports: object) -> None:
        freed = False
        threads: dict[UUID, list[Inbound]] = {}
        departures: list[Departure] = []
        for event in events:
            if isinstance(event, Signal.Recorded):
                inbound = inbound_of(event)
                if isinstance(inbound, str):
                    _not_threaded(event, inbound)
                elif inbound is not None:
                    if inbound.aside is not None:
                        _threaded_aside(event, inbound)
                    thread = conversation_id(inbound.customer_id, inbound.topic)
                    threads.setdefault(thread, []).append(inbound)
            else:
                freed = True
                if isinstance(event, LEAVING):
                    departures.append(Departure(event.originator_id, event.agent))
        await self._receive_all(list(threads.values()))
        if departures:
            await self.release(departures)
        if freed:
            await self.drain()

    async def _receive_all(self, threads: Sequence[Sequence[Inbound]]) -> None:
        """Every thread's messages in order, in batches of up to `batch` conversations, each
        batch one commit, `concurrency` batches at a time; the first failure is raised once
        every batch has stopped, so none is still writing when the page is tried again."""
        gate = asyncio.Semaphore(self.concurrency)
        page = self.receive.page()

        async def receive(batch: Sequence[Sequence[Inbound]]) -> None:
            async with gate:
                await self.receive.many([m for thread in batch for m in thread], page)

        batches = [threads[i : i + self.batch] for i in range(0, len(threads), self.batch)]
        outcomes = await asyncio.gather(*(receive(b) for b in batches), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


def _not_threaded(event: Signal.Recorded, reason: str) -> None:
    """An inbound message that no thread can hold, logged with why (the reason names no value
    of the customer's)."""
    log.warning(
        "inbound message not threaded",
        signal_id=str(event.originator_id),
        customer_id=str(event.customer_id),
        reason=reason,
    )


def _threaded_aside(event: Signal.Recorded, inbound: Inbound) -> None:
    """An inbound message threaded otherwise than it named; its thread's note says why."""
    log.warning(
        "inbound message threaded in the default topic",
        signal_id=str(event.originator_id),
        customer_id=str(event.customer_id),
        reason=f"its topic {topic_fault(str(event.properties.get('topic')))}",
    )
