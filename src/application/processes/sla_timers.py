"""SLA timers: a durable deadline for every conversation whose clock runs, fired by time alone.

Following the Conversation events, the process works out each changed conversation's next
breach (`sla.next_breach`, from the routing document in force, the customer's tier and the
team's working hours) and keeps it as a deadline (`SlaDeadlines`); a conversation answered,
snoozed, resolved or waiting on the customer has none. A timer run (`due`) claims the due
deadlines, loads each conversation as committed, works its breach out again, and records it
(`Conversation.record_breach`, escalated as the routing document's `sla.on_breach` says), in the
transaction that marks the deadline breached: a deadline fires once, and one whose conversation
got its answer in the meantime fires as a no-op. The conversation is saved as every command
saves one (`SlaPorts.conversations`): its holder in the routing roster, with the priority its
team's queue is ordered by, its team and its agent's load, changes in the same commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.conversation.agents import Team, team_id
from domain.conversation.aggregate import Conversation
from domain.conversation.routing_book import ROUTING_BOOK_ID, RoutingBook
from domain.conversation.sla import Deadline, SlaFacts, next_breach
from domain.customer.aggregate import Customer
from ports.inbox import SlaDeadline, conversation_events

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import CanMutateAggregate

    from domain.conversation.routing import RoutingDocument
    from domain.conversation.working_hours import WorkingHours
    from ports.clock import Clock
    from ports.sla_timers import SlaPorts

__all__ = ["SLA_TIMER", "SlaTimers", "breach_of"]

SLA_TIMER = "sla-timer"
"""Who `by` names on a breach and its escalation."""

_HANDLES: tuple[type[Any], ...] = conversation_events(
    "Started", "MessageReceived", "MessageSent", "Snoozed", "Woke", "Resolved", "Reopened",
    "MarkedWaiting", "Assigned", "Transferred", "Unassigned", "Queued", "SlaBreached",
    "ReplyUndelivered",
)  # fmt: skip
"""What can start, stop or move a clock: messages, status, and the team (its working hours)."""


def breach_of(
    conversation: Conversation,
    routing: RoutingDocument,
    tier: str | None,
    hours: WorkingHours | None,
) -> tuple[Deadline, SlaDeadline] | None:
    """The breach the conversation's clock runs to, and the deadline kept for it (breached if
    already recorded for the customer's current wait); None when no clock runs."""
    facts = conversation.sla_facts(tier)
    if facts is None:
        return None
    deadline = next_breach(facts, routing.sla, hours)
    if deadline is None:
        return None
    recorded = _recorded(conversation, facts, deadline)
    if recorded is not None:
        return deadline, SlaDeadline(deadline.sla, recorded, breached=True)
    return deadline, SlaDeadline(deadline.sla, deadline.due, breached=False)


def _recorded(conversation: Conversation, facts: SlaFacts, deadline: Deadline) -> datetime | None:
    """When the current wait already breached this target: a breach recorded since the
    customer's oldest unanswered message (an earlier wait's breached before it was answered,
    so before this wait began); its team may have moved the due instant since."""
    since = facts.awaiting_since
    for sla, due in conversation.breaches:
        if sla is deadline.sla and since is not None and due > since:
            return due
    return None


class _Context:
    """The routing document, customers' tiers and teams' hours a round reads, each loaded once."""

    def __init__(self, ports: SlaPorts) -> None:
        self.ports = ports

    async def routing(self) -> RoutingDocument | None:
        found = (await self.ports.streams.load([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
        if not isinstance(found, RoutingBook) or not found.versions:
            return None
        return found.current.document

    async def deadlines(
        self, conversations: Collection[Conversation], routing: RoutingDocument
    ) -> dict[UUID, tuple[Deadline, SlaDeadline] | None]:
        # A customer's stream can be long, and only a tier's own targets need it; a team's
        # hours count only when the document says so.
        customers = (
            await self.ports.streams.load({c.customer_id for c in conversations})
            if routing.sla.tiers
            else {}
        )
        teams = (
            await self.ports.streams.load({team_id(c.team) for c in conversations if c.team})
            if routing.sla.working_hours
            else {}
        )
        found: dict[UUID, tuple[Deadline, SlaDeadline] | None] = {}
        for conversation in conversations:
            customer = customers.get(conversation.customer_id)
            tier = None
            if isinstance(customer, Customer):
                value = customer.attributes.get(routing.tier_attribute)
                tier = None if value is None else str(value)
            team = teams.get(team_id(conversation.team)) if conversation.team else None
            hours = team.working_hours if isinstance(team, Team) else None
            found[conversation.id] = breach_of(conversation, routing, tier, hours)
        return found


class SlaTimers:
    """Keeps a deadline for each conversation whose SLA clock runs, and fires the due ones."""

    name = "sla_timers"
    handles = _HANDLES
    follows: tuple[str, ...] = ()
    page_size: int | None = None

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def handle(self, events: Sequence[CanMutateAggregate[UUID]], ports: SlaPorts) -> None:
        changed = {event.originator_id for event in events if isinstance(event, _HANDLES)}
        if changed:
            await self._plan(changed, ports)

    async def _plan(self, conversation_ids: Collection[UUID], ports: SlaPorts) -> None:
        context = _Context(ports)
        loaded = await ports.streams.load(conversation_ids)
        conversations = [c for c in loaded.values() if isinstance(c, Conversation)]
        routing = await context.routing()
        if routing is None:  # no routing document: no targets, no clock
            await ports.sla_deadlines.clear(conversation_ids)
            return
        planned = await context.deadlines(conversations, routing)
        await _keep(ports, conversation_ids, {c: p[1] for c, p in planned.items() if p})

    async def due(self, ports: SlaPorts, limit: int) -> int:
        """Fires up to `limit` due deadlines; the caller holds the process's turn, so no page
        runs meanwhile, and the breaches, their escalations and the deadlines' new state
        commit together."""
        now = self.clock.now()
        claimed = await ports.sla_deadlines.claim_due(now, limit)
        if not claimed:
            return 0
        context = _Context(ports)
        routing = await context.routing()
        loaded = await ports.streams.load(claimed)
        conversations = [c for c in loaded.values() if isinstance(c, Conversation)]
        if routing is None:
            await ports.sla_deadlines.clear(claimed)
            return len(claimed)
        planned = await context.deadlines(conversations, routing)
        kept = {c: p[1] for c, p in planned.items() if p is not None}
        breached: list[Conversation] = []
        for conversation in conversations:
            plan = planned[conversation.id]
            if plan is None or plan[1].breached or plan[0].due > now:
                continue  # answered, stopped, moved or recorded: kept as it now stands
            breach = plan[0]
            if conversation.record_breach(breach, SLA_TIMER, now, routing.sla.on_breach):
                kept[conversation.id] = SlaDeadline(breach.sla, breach.due, breached=True)
                breached.append(conversation)
        if breached:
            # Saved as any command saves a conversation: its holder in the roster (the rank
            # its queue is ordered by, its team, its agent's load) changes in this commit too.
            await ports.conversations.save(breached)
        await _keep(ports, claimed, kept)
        return len(claimed)


async def _keep(
    ports: SlaPorts, conversation_ids: Collection[UUID], kept: dict[UUID, SlaDeadline]
) -> None:
    """Sets the deadlines kept and drops the others'."""
    if kept:
        await ports.sla_deadlines.set(kept)
    gone = [c for c in conversation_ids if c not in kept]
    if gone:
        await ports.sla_deadlines.clear(gone)
