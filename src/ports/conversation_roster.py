"""Who can take a conversation, and what waits: the agents and teams as routing sees them, with
each agent's load per channel kind, and the teams' queues.

The loads are kept with the conversations' own events: whatever commits an assignment, a
transfer, an unassignment or a resolution changes its agent's load in the same commit, and a
commit that would put an agent over their capacity fails whole with `AgentOverCapacity`. The
store checks it, under concurrency; nobody assumes it from a read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ports.unit_of_work import ConcurrencyConflict

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from datetime import datetime
    from uuid import UUID

    from domain.conversation.routing import Candidate, TeamView
    from domain.segments.conditions import Condition, SegmentFacts

__all__ = ["AgentOverCapacity", "CustomerReads", "Roster"]


class AgentOverCapacity(ConcurrencyConflict):
    """The commit would have given an agent more conversations of a kind than their capacity:
    someone else took the room first. Read the loads again and decide again."""


@dataclass(frozen=True, slots=True)
class CustomerReads:
    """What routing reads of a conversation's customer: their segments, how many of their other
    conversations are open, and what the routing conditions read of them (None: not known)."""

    segments: frozenset[str] = frozenset()
    other_open: int = 0
    facts: SegmentFacts | None = None


class Roster(Protocol):
    """The agents, teams, loads and queues, as last committed."""

    async def teams(self) -> list[TeamView]:
        """Every team, with its members, skills and how many conversations wait in its queue."""
        ...

    async def candidates(self, agents: Collection[str]) -> list[Candidate]:
        """These agents (the known ones) with their load per channel kind."""
        ...

    async def queued(self, team: str) -> list[UUID]:
        """The open conversations waiting in the team's queue, held by no agent: the highest
        priority first, then the longest waiting, then the first to arrive (to start its
        thread), so conversations queued at one instant keep the order they came in."""
        ...

    async def queues(self) -> dict[str, int]:
        """How many conversations wait in each team's queue (teams with none left out)."""
        ...

    async def held(self, agent: str, team: str) -> list[UUID]:
        """The open conversations of `team` that `agent` holds, the highest priority first."""
        ...

    async def open_conversations(self, customer_id: UUID, besides: UUID) -> int:
        """How many of the customer's conversations other than `besides` are open."""
        ...

    async def segments_of(self, customer_id: UUID) -> frozenset[str]:
        """The keys of the segments the customer is a member of."""
        ...

    async def facts_of(
        self, customer_id: UUID, conditions: Sequence[Condition], now: datetime
    ) -> SegmentFacts | None:
        """What the conditions may read of the customer (attributes and profile, identity types,
        consents, the signals within their lookback); None for a customer not known yet."""
        ...

    async def customers_of(
        self, threads: Mapping[UUID, UUID], conditions: Sequence[Condition], now: datetime
    ) -> dict[UUID, CustomerReads]:
        """For each conversation (its id to its customer's), what routing reads of the customer,
        all at once: `segments_of`, `open_conversations` besides it, and `facts_of`."""
        ...
