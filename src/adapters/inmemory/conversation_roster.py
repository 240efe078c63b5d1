"""The roster in memory: the listings PostgreSQL writes with the events (agents, teams, holds)
and the loads its trigger keeps, changed by the in-memory unit of work at commit, capacity
checked there as the trigger checks it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapters.inmemory.campaign_enrollments import InMemoryCustomerSegments
from adapters.inmemory.processes import InMemoryCustomerFacts
from domain.conversation.agents import Agent, Team
from domain.conversation.aggregate import Conversation
from domain.conversation.routing import Candidate, TeamView
from ports.conversation_roster import AgentOverCapacity, CustomerReads
from ports.segment_evaluation import SegmentInForce

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from eventsourcing.domain import Aggregate

    from adapters.inmemory.storage import InMemoryStorage
    from domain.conversation.vocabulary import ChannelKind
    from domain.segments.conditions import Condition, SegmentFacts

__all__ = ["Hold", "InMemoryRoster", "RosterTables"]


@dataclass(frozen=True, slots=True)
class Hold:
    """A conversation's holder, as `conversation_holds` keeps it."""

    customer_id: UUID
    team: str | None
    agent: str | None
    kind: ChannelKind | None
    open: bool
    priority: int
    waiting_since: datetime

    @property
    def counted(self) -> tuple[str, ChannelKind] | None:
        """The agent and kind it counts as, while an agent holds it open."""
        if self.agent is None or self.kind is None or not self.open:
            return None
        return self.agent, self.kind


@dataclass(slots=True)
class RosterTables:
    """What the listings and `agent_loads` hold."""

    agents: dict[str, Candidate] = field(default_factory=dict)
    teams: dict[str, TeamView] = field(default_factory=dict)
    holds: dict[UUID, Hold] = field(default_factory=dict)
    loads: dict[tuple[str, ChannelKind], int] = field(default_factory=dict)
    last_assigned: dict[str, datetime] = field(default_factory=dict)

    def prepare(self, aggregates: Iterable[Aggregate]) -> Callable[[], None]:
        """Checks what the aggregates' new state does to the loads; the change, to apply once
        the commit is certain. Raises AgentOverCapacity as the trigger does."""
        agents = dict(self.agents)
        teams = dict(self.teams)
        holds: dict[UUID, Hold] = {}
        for aggregate in aggregates:
            if not aggregate.pending_events:
                continue
            if isinstance(aggregate, Agent):
                agents[aggregate.key] = aggregate.candidate({})
            elif isinstance(aggregate, Team):
                teams[aggregate.key] = aggregate.view()
            elif isinstance(aggregate, Conversation):
                holds[aggregate.id] = self._hold(aggregate)
        loads = dict(self.loads)
        assigned = dict(self.last_assigned)
        for conversation_id, hold in holds.items():
            before = self.holds.get(conversation_id)
            was = None if before is None else before.counted
            now = hold.counted
            if was == now:
                continue
            if was is not None:
                loads[was] = loads.get(was, 0) - 1
            if now is not None:
                loads[now] = loads.get(now, 0) + 1
                known = agents.get(now[0])
                allowed = 0 if known is None else known.capacity.get(now[1], 0)
                if loads[now] > allowed:
                    raise AgentOverCapacity(
                        f"agent {now[0]} would hold {loads[now]} {now[1]} conversations,"
                        f" over their capacity of {allowed}"
                    )
                assigned[now[0]] = hold.waiting_since

        def apply() -> None:
            self.agents, self.teams, self.loads = agents, teams, loads
            self.holds.update(holds)
            self.last_assigned = assigned

        return apply

    def _hold(self, conversation: Conversation) -> Hold:
        before = self.holds.get(conversation.id)
        kind = conversation.channel_kind
        if (
            before is not None
            and before.open
            and before.agent is not None
            and before.agent == conversation.agent
        ):
            kind = before.kind  # counted as the kind its agent took it as
        waiting = next(
            (a.at for a in reversed(conversation.history) if a.agent is None),
            conversation.started_at,
        )
        last = conversation.history[-1].at if conversation.history else conversation.started_at
        return Hold(
            conversation.customer_id,
            conversation.team,
            conversation.agent,
            kind,
            conversation.is_open,
            conversation.priority.rank,
            waiting if conversation.agent is None else last,
        )


class InMemoryRoster:
    """The roster as the storage's tables hold it."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.tables = storage.roster
        self.segments = InMemoryCustomerSegments(storage.events)
        self.facts = InMemoryCustomerFacts(storage.events)

    async def teams(self) -> list[TeamView]:
        queues = await self.queues()
        return [
            TeamView(team.key, team.skills, team.members, queues.get(team.key, 0))
            for team in sorted(self.tables.teams.values(), key=lambda t: t.key)
        ]

    async def candidates(self, agents: Collection[str]) -> list[Candidate]:
        tables = self.tables
        found = []
        for key in sorted(set(agents)):
            agent = tables.agents.get(key)
            if agent is None:
                continue
            load = {kind: n for (holder, kind), n in tables.loads.items() if holder == key}
            found.append(
                Candidate(
                    agent.key,
                    agent.skills,
                    agent.presence,
                    agent.capacity,
                    load,
                    tables.last_assigned.get(key),
                )
            )
        return found

    async def queued(self, team: str) -> list[UUID]:
        # A hold is listed when its conversation is first saved: the order they arrived in.
        waiting = [
            (-hold.priority, hold.waiting_since, arrived, conversation_id)
            for arrived, (conversation_id, hold) in enumerate(self.tables.holds.items())
            if hold.team == team and hold.agent is None and hold.open
        ]
        return [conversation_id for *_, conversation_id in sorted(waiting)]

    async def queues(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for hold in self.tables.holds.values():
            if hold.team is not None and hold.agent is None and hold.open:
                counts[hold.team] = counts.get(hold.team, 0) + 1
        return counts

    async def held(self, agent: str, team: str) -> list[UUID]:
        holding = [
            (-hold.priority, hold.waiting_since, conversation_id)
            for conversation_id, hold in self.tables.holds.items()
            if hold.agent == agent and hold.team == team and hold.open
        ]
        return [conversation_id for *_, conversation_id in sorted(holding)]

    async def open_conversations(self, customer_id: UUID, besides: UUID) -> int:
        return sum(
            1
            for conversation_id, hold in self.tables.holds.items()
            if hold.customer_id == customer_id and hold.open and conversation_id != besides
        )

    async def segments_of(self, customer_id: UUID) -> frozenset[str]:
        return (await self.segments.of([customer_id])).get(customer_id, frozenset())

    async def facts_of(
        self, customer_id: UUID, conditions: Sequence[Condition], now: datetime
    ) -> SegmentFacts | None:
        in_force = [
            SegmentInForce(customer_id, f"routing-{n}", 0, c) for n, c in enumerate(conditions)
        ]
        return (await self.facts.facts([customer_id], in_force, now)).get(customer_id)

    async def customers_of(
        self, threads: Mapping[UUID, UUID], conditions: Sequence[Condition], now: datetime
    ) -> dict[UUID, CustomerReads]:
        return {
            thread: CustomerReads(
                await self.segments_of(customer_id),
                await self.open_conversations(customer_id, besides=thread),
                await self.facts_of(customer_id, conditions, now),
            )
            for thread, customer_id in threads.items()
        }
