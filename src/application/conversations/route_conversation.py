"""Routing a conversation: the facts `routing.route` and `routing.offer` take, gathered.

The routing book's current policy, the customer's context (what the document's conditions read
of them: attributes and profile, consents, recent signals; the segments they are in, how many
conversations they have open) and the load (the roster's teams,
members and each agent's load per channel kind). The decision is applied in the caller's unit
of work: its commit changes the agent's load and fails whole if that would put them over their
capacity (`AgentOverCapacity`), so a decision made on a stale read is retried, never kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from domain.conversation.routing import CustomerContext, QueueEntry, route
from domain.conversation.routing_book import ROUTING_BOOK_ID, RoutingBook
from domain.conversation.sla import next_breach
from domain.segments.conditions import SegmentFacts

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from uuid import UUID

    from domain.conversation.aggregate import Conversation
    from domain.conversation.routing import Candidate, RoutingDecision, RoutingPolicy, TeamView
    from domain.conversation.vocabulary import ChannelKind
    from domain.conversation.working_hours import WorkingHours
    from domain.segments.conditions import Condition
    from ports.conversation_roster import CustomerReads, Roster
    from ports.unit_of_work import UnitOfWork, UnitsOfWork

__all__ = [
    "ROUTER",
    "Load",
    "PageRouting",
    "Router",
    "conditions_of",
    "customer_context",
    "queue_entry",
]

ROUTER = "router"
"""Who `by` names when routing did it."""

_PROFILE_FIELDS = ("first_name", "last_name", "locale", "country", "time_zone")


def customer_context(
    facts: SegmentFacts | None, segments: frozenset[str], open_conversations: int
) -> CustomerContext:
    """The customer as routing sees them: what conditions read of them (attributes with the
    profile's fields, identity types, consents, recent signals), segments, open conversations."""
    return CustomerContext(facts or SegmentFacts(), segments, open_conversations)


def conditions_of(policy: RoutingPolicy) -> list[Condition]:
    """The `when` conditions of the document's rules and escalations."""
    document = policy.document
    return [m.when for m in (*document.rules, *document.escalations) if m.when is not None]


@dataclass(frozen=True, slots=True)
class Load:
    """What routing reads beside the conversation: the teams, their members with their loads,
    and the customer's segments and other open conversations."""

    teams: list[TeamView]
    agents: list[Candidate]
    segments: frozenset[str] = frozenset()
    other_open: int = 0
    facts: SegmentFacts | None = None

    def candidate(self, agent: str) -> Candidate | None:
        return next((a for a in self.agents if a.key == agent), None)

    def after(self, decision: RoutingDecision, kind: ChannelKind, at: datetime) -> Load:
        """The load once the decision is committed: its agent holds one more of the kind, or
        its team's queue is one longer."""
        if decision.agent is not None:
            agents = [a.taking(kind, at) if a.key == decision.agent else a for a in self.agents]
            return replace(self, agents=agents)
        teams = [
            replace(t, queued=t.queued + 1) if t.key == decision.team else t for t in self.teams
        ]
        return replace(self, teams=teams)


class Router:
    """Reads what routing needs and decides. The reads are on the roster, never inside a unit of
    work: a unit of work holds a connection, and one waiting for another could starve the pool."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster

    async def policy(self, uow: UnitOfWork) -> RoutingPolicy | None:
        """The routing in force; None before any document was published."""
        book = (await uow.repository(RoutingBook).get([ROUTING_BOOK_ID])).get(ROUTING_BOOK_ID)
        return None if book is None or not book.versions else book.current

    async def load(self) -> Load:
        """Every team, and every member of one with their load."""
        teams = await self.roster.teams()
        members = {member for team in teams for member in team.members}
        return Load(teams, await self.roster.candidates(members))

    async def contexts(
        self, threads: Mapping[UUID, UUID], page: PageRouting, now: datetime
    ) -> tuple[RoutingPolicy | None, dict[UUID, Load]]:
        """The policy in force and, under one, each conversation (its id to its customer's) with
        the page's load and the customer's context: segments, their other open conversations
        and what the policy's conditions read of them, read for all of them at once, beside
        the roster's loads. None and no contexts before any document was published."""
        policy = await page.policy()
        if policy is None:
            return None, {}
        async with asyncio.TaskGroup() as reads:
            customers = reads.create_task(
                self.roster.customers_of(threads, conditions_of(policy), now)
            )
            load = reads.create_task(page.load())
        return policy, _with_customers(load.result(), customers.result())

    def decide(
        self, conversation: Conversation, policy: RoutingPolicy, load: Load, now: datetime
    ) -> RoutingDecision:
        """Where the conversation goes now, with every reason."""
        context = customer_context(load.facts, load.segments, load.other_open + 1)
        return route(conversation.routing_facts(), context, policy, load.teams, load.agents, now)


def _with_customers(load: Load, found: Mapping[UUID, CustomerReads]) -> dict[UUID, Load]:
    return {
        thread: replace(
            load, segments=reads.segments, other_open=reads.other_open, facts=reads.facts
        )
        for thread, reads in found.items()
    }


class PageRouting:
    """What the routings of one page share: the policy in force and the load, each read once
    and kept current in memory as the page's own decisions take places (`took`), so a page of
    messages reads the roster once rather than once a message. A decision made on it is
    checked by the holds' trigger at its commit like any other; after a conflict (`stale`) the
    load is read again."""

    def __init__(self, router: Router, uows: UnitsOfWork) -> None:
        self.router = router
        self.uows = uows
        # Each read once, the policy's and the load's at once.
        self._policy_read = asyncio.Lock()
        self._load_read = asyncio.Lock()
        self._policy: tuple[RoutingPolicy | None] | None = None
        self._load: Load | None = None

    async def policy(self) -> RoutingPolicy | None:
        """The routing in force when the page was first asked for it."""
        async with self._policy_read:
            if self._policy is None:
                async with self.uows() as uow:
                    self._policy = (await self.router.policy(uow),)
            return self._policy[0]

    async def load(self) -> Load:
        """The teams and their members' loads, with the page's decisions so far."""
        async with self._load_read:
            if self._load is None:
                self._load = await self.router.load()
            return self._load

    def latest(self, load: Load) -> Load:
        """`load` (a customer's, read by `Router.contexts`) with the page's teams and members as
        they are now, the decisions of its other routings so far included."""
        if self._load is None:
            return load
        return replace(load, teams=self._load.teams, agents=self._load.agents)

    def took(self, decision: RoutingDecision, kind: ChannelKind | None, at: datetime) -> None:
        """A decision of the page, to be committed: the next ones see its place taken."""
        if self._load is not None and kind is not None:
            self._load = self._load.after(decision, kind, at)

    def stale(self) -> None:
        """A commit failed (someone else took a place first): read the load again."""
        self._load = None


def queue_entry(
    conversation: Conversation,
    policy: RoutingPolicy | None,
    hours: WorkingHours | None = None,
    tier: str | None = None,
) -> QueueEntry:
    """The conversation as it waits: its priority, and when its SLA breaches by the policy (in
    its team's working hours, when the policy counts them)."""
    breach = None
    if policy is not None:
        facts = conversation.sla_facts(tier)
        deadline = None if facts is None else next_breach(facts, policy.document.sla, hours)
        breach = None if deadline is None else deadline.due
    return conversation.queue_entry(breach)
