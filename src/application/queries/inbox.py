"""The inbox as agents read it: conversations listed and filtered, one conversation's thread
across channels with its customer's context, and the changes a live stream follows.

Every read takes `visible`, the teams whose conversations the reader may see (None: every
team); a conversation of another team is listed to nobody else and refused on its own
(`ConversationHidden`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from application.queries.inbox_feed import InboxFeed
from application.queries.team_scope import TeamScope
from domain.conversation.aggregate import Conversation, Direction
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Collection
    from datetime import datetime
    from uuid import UUID

    from application.queries.customer_context import ContextQueries, CustomerContext
    from domain.conversation.aggregate import Assignment, Classification
    from domain.conversation.sla import SlaKind
    from domain.conversation.vocabulary import Priority
    from domain.message.aggregate import MessageStatus
    from domain.policy.vocabulary import Channel
    from ports.clock import Clock
    from ports.inbox import InboxChanges, InboxFilter, InboxPage, InboxReadModel, InboxRow
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "ConversationDetail",
    "ConversationHidden",
    "InboxQueries",
    "Reach",
    "ThreadEntry",
]


class Reach(Protocol):
    """The teams whose conversations a stream's reader sees now (None: every team), asked again
    as the stream goes on (`InboxQueries.changes`); it raises when the reader may read no
    more."""

    async def __call__(self) -> Collection[str] | None: ...


class ConversationHidden(DomainError):
    """The conversation is held by a team the reader does not see."""

    def __init__(self, conversation_id: UUID, team: str | None) -> None:
        held = "no team yet" if team is None else f"team {team!r}"
        super().__init__(f"conversation {conversation_id} is held by {held}, not one of yours")
        self.conversation_id = conversation_id
        self.team = team


@dataclass(frozen=True, slots=True)
class ThreadEntry:
    """One message of the thread, whatever its channel; an outbound one with the provider's
    last status."""

    message_id: UUID
    direction: Direction
    channel: Channel
    at: datetime
    author: str
    text: str
    template: str | None
    status: MessageStatus | None


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    """One conversation: its thread across channels, notes, assignment history with reasons,
    status, tags, priority, classification and SLA, with the customer's context (None when
    the customer is not known, or was erased)."""

    conversation_id: UUID
    customer_id: UUID
    topic: str
    status: str
    team: str | None
    agent: str | None
    priority: Priority
    tags: list[str]
    classification: Classification | None
    channels: list[Channel]
    last_channel: Channel | None
    snoozed_until: datetime | None
    started_at: datetime
    version: int
    thread: list[ThreadEntry]
    notes: list[tuple[UUID, str, str, datetime]]
    history: list[Assignment]
    breaches: list[tuple[SlaKind, datetime]]
    inbox: InboxRow | None
    customer: CustomerContext | None


class InboxQueries:
    """Reads the inbox projection, the conversations' streams and the customer's context."""

    def __init__(
        self,
        inbox: InboxReadModel,
        changes: InboxChanges,
        uows: UnitsOfWork,
        context: ContextQueries,
        clock: Clock,
    ) -> None:
        self.inbox = inbox
        self.uows = uows
        self.context = context
        self.clock = clock
        self.feed = InboxFeed(inbox, changes)

    def _timed(self, where: InboxFilter, breach_within: timedelta | None) -> InboxFilter:
        if breach_within is None:
            return where
        return dataclasses.replace(where, breach_before=self.clock.now() + breach_within)

    async def page(
        self,
        where: InboxFilter,
        visible: Collection[str] | None,
        *,
        breach_within: timedelta | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> InboxPage:
        """The conversations `where` holds (breaching within `breach_within` from now, if
        given), most recently changed first; `after` is the previous page's `next_cursor`."""
        return await self.inbox.page(
            self._timed(where, breach_within), visible, after=after, limit=limit
        )

    async def last_change(self) -> int:
        """The `seq` of the inbox's last change as read now: `changes` after it misses none
        that commits from now on."""
        return await self.inbox.high_water()

    async def changes(
        self,
        where: InboxFilter,
        visible: Collection[str] | None,
        *,
        after: int | None = None,
        breach_within: timedelta | None = None,
        heartbeat: float = 15.0,
        batch: int = 500,
        reach: Reach | None = None,
        reach_every: float = 1.0,
    ) -> AsyncGenerator[list[InboxRow], None]:
        """The rows that change after `after` (the inbox's last change when None) and that
        `where` holds, in the order they change, a batch at a time; an empty batch after
        `heartbeat` seconds with no change. Endless: the caller stops when its client goes;
        FeedOverrun if it falls too far behind the changes.

        `visible` holds for the whole stream unless `reach` is given: then it is asked again
        for the teams the reader sees before each batch there is something to send in, and
        every `reach_every` seconds while nothing is, so a reader taken off a team gets no
        more of its rows; what it raises (the reader may read no more) ends the stream."""
        subscription, fed_from = await self.feed.subscribe()
        try:
            last = fed_from if after is None else after
            # Catching up from the projection: the feed has what commits from now on, and
            # what both hold is given once (a row's `seq` only grows).
            while after is not None:
                if reach is not None:
                    visible = await reach()
                found = await self.inbox.changed_since(
                    last, self._timed(where, breach_within), visible, batch
                )
                if found:
                    last = found[-1].seq
                    yield found
                if len(found) < batch:
                    break
            # A quiet stream asks `reach` every `reach_every` seconds (a key revoked while
            # nothing changes ends it then, not at the heartbeat), and says it is alive every
            # `heartbeat` seconds.
            wait = heartbeat if reach is None else min(heartbeat, reach_every)
            beat_after = max(1, round(heartbeat / wait))
            quiet = 0
            while True:
                rows = await subscription.next(wait)
                if not rows:
                    if reach is not None:
                        visible = await reach()
                    quiet += 1
                    if quiet >= beat_after:
                        quiet = 0
                        yield []
                    continue
                timed = self._timed(where, breach_within)
                wanted = [row for row in rows if row.seq > last and timed.holds(row, None)]
                last = max(last, rows[-1].seq)
                if wanted and reach is not None:
                    visible = await reach()
                kept = [row for row in wanted if timed.holds(row, visible)]
                if kept:
                    quiet = 0
                    yield kept
        finally:
            subscription.close()

    async def close(self) -> None:
        """Stops the feed of the live streams."""
        await self.feed.close()

    async def conversation(
        self,
        conversation_id: UUID,
        visible: Collection[str] | None,
        scope: TeamScope | None = None,
    ) -> ConversationDetail:
        """The conversation as last committed, with its customer's context as `scope` reads it
        (default: the conversations of `visible`, every team's sends); NotFound if none,
        ConversationHidden if held by a team the reader does not see."""
        async with self.uows() as uow:
            found = await uow.repository(Conversation).get([conversation_id])
        conversation = found.get(conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation {conversation_id}")
        if visible is not None and conversation.team not in visible:
            raise ConversationHidden(conversation_id, conversation.team)
        thread = [
            ThreadEntry(
                m.message_id,
                m.direction,
                m.channel,
                m.at,
                m.author,
                m.text,
                m.template,
                conversation.statuses.get(m.message_id)
                if m.direction is Direction.OUTBOUND
                else None,
            )
            for m in conversation.messages
        ]
        return ConversationDetail(
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            topic=conversation.topic,
            status=str(conversation.status),
            team=conversation.team,
            agent=conversation.agent,
            priority=conversation.priority,
            tags=sorted(conversation.tags),
            classification=conversation.classification,
            channels=list(conversation.channels),
            last_channel=conversation.last_channel,
            snoozed_until=conversation.snoozed_until,
            started_at=conversation.started_at,
            version=conversation.version,
            thread=thread,
            notes=[(n.note_id, n.author, n.text, n.at) for n in conversation.notes],
            history=list(conversation.history),
            breaches=list(conversation.breaches),
            inbox=await self.inbox.get(conversation_id),
            customer=await self._context(
                conversation.customer_id,
                scope or TeamScope(None, None if visible is None else frozenset(visible)),
            ),
        )

    async def _context(self, customer_id: UUID, scope: TeamScope) -> CustomerContext | None:
        try:
            return await self.context.of(customer_id, scope)
        except NotFound:
            return None
