"""The roster on PostgreSQL: agents, teams and conversations' holders as listings (written with
their events, migration 0024), and the loads the holds' trigger keeps, capacity checked there."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import asyncpg

from adapters.postgres.event_store import SideTable
from adapters.postgres.segment_states import PostgresCustomerFacts
from domain.conversation.routing import Candidate, TeamView
from domain.conversation.vocabulary import ChannelKind, Presence
from ports.conversation_roster import AgentOverCapacity, CustomerReads
from ports.segment_evaluation import SegmentInForce

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from datetime import datetime

    from domain.conversation.agents import Agent, Team
    from domain.conversation.aggregate import Conversation
    from domain.segments.conditions import Condition, SegmentFacts

__all__ = [
    "CAPACITY_CONSTRAINT",
    "HOLDS",
    "ROSTER_AGENTS",
    "ROSTER_TEAMS",
    "PostgresRoster",
    "agent_row",
    "hold_row",
    "over_capacity",
    "routing_conditions",
    "team_row",
]

CAPACITY_CONSTRAINT = "agent_capacity"
"""The constraint the holds' trigger names when a commit would put an agent over capacity."""

ROSTER_AGENTS = SideTable(
    insert=(
        "INSERT INTO conversation_agents (key, agent_id, skills, presence, capacity, updated_at)"
    ),
    types=("text", "uuid", "jsonb", "text", "jsonb", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET skills = EXCLUDED.skills, presence = EXCLUDED.presence,"
        " capacity = EXCLUDED.capacity, updated_at = EXCLUDED.updated_at"
    ),
)
ROSTER_TEAMS = SideTable(
    insert="INSERT INTO conversation_teams (key, team_id, skills, members, updated_at)",
    types=("text", "uuid", "jsonb", "jsonb", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (key) DO UPDATE SET skills = EXCLUDED.skills, members = EXCLUDED.members,"
        " updated_at = EXCLUDED.updated_at"
    ),
)
# The kind a conversation counts as stays the one its agent took it as, while they hold it.
HOLDS = SideTable(
    insert=(
        "INSERT INTO conversation_holds (conversation_id, customer_id, team, agent, kind, open,"
        " priority, waiting_since, updated_at)"
    ),
    types=("uuid", "uuid", "text", "text", "text", "bool", "int2", "timestamptz", "timestamptz"),
    on_conflict=(
        "ON CONFLICT (conversation_id) DO UPDATE SET team = EXCLUDED.team,"
        " agent = EXCLUDED.agent,"
        " kind = CASE WHEN conversation_holds.open AND conversation_holds.agent IS NOT NULL"
        " AND conversation_holds.agent = EXCLUDED.agent"
        " THEN conversation_holds.kind ELSE EXCLUDED.kind END,"
        " open = EXCLUDED.open, priority = EXCLUDED.priority,"
        " waiting_since = EXCLUDED.waiting_since, updated_at = EXCLUDED.updated_at"
    ),
)


def agent_row(agent: Agent) -> tuple[Any, ...]:
    capacity = {str(kind): count for kind, count in agent.capacity.items()}
    return (
        agent.key,
        agent.id,
        json.dumps(sorted(agent.skills)),
        str(agent.presence),
        json.dumps(capacity),
        agent.modified_on,
    )


def team_row(team: Team) -> tuple[Any, ...]:
    return (
        team.key,
        team.id,
        json.dumps(sorted(team.skills)),
        json.dumps(sorted(team.members)),
        team.modified_on,
    )


def hold_row(conversation: Conversation) -> tuple[Any, ...]:
    kind = conversation.channel_kind
    waiting = next(
        (a.at for a in reversed(conversation.history) if a.agent is None),
        conversation.started_at,
    )
    return (
        conversation.id,
        conversation.customer_id,
        conversation.team,
        conversation.agent,
        None if kind is None else str(kind),
        conversation.is_open,
        conversation.priority.rank,
        waiting,
        conversation.modified_on,
    )


def over_capacity(error: asyncpg.CheckViolationError) -> AgentOverCapacity | None:
    """The roster's own refusal, as the port names it; None for any other check."""
    if getattr(error, "constraint_name", None) != CAPACITY_CONSTRAINT:
        return None
    return AgentOverCapacity(getattr(error, "message", None) or str(error))


_TEAMS = """
SELECT t.key, t.skills, t.members, coalesce(q.waiting, 0) AS waiting
FROM conversation_teams t
LEFT JOIN (
    SELECT team, count(*) AS waiting FROM conversation_holds
    WHERE agent IS NULL AND open AND team IS NOT NULL GROUP BY team
) q ON q.team = t.key
ORDER BY t.key
"""
_CANDIDATES = """
SELECT a.key, a.skills, a.presence, a.capacity,
       coalesce(jsonb_object_agg(l.kind, l.held) FILTER (WHERE l.kind IS NOT NULL), '{}')
           AS load,
       max(l.last_assigned_at) AS last_assigned_at
FROM conversation_agents a
LEFT JOIN agent_loads l ON l.agent = a.key
WHERE a.key = ANY($1::text[])
GROUP BY a.key
ORDER BY a.key
"""
# Conversations queued at one instant (a burst, a manual clock) in the order they arrived: the
# place in the log of their thread's first event.
_QUEUED = """
SELECT h.conversation_id FROM conversation_holds h
WHERE h.team = $1 AND h.agent IS NULL AND h.open
ORDER BY h.priority DESC, h.waiting_since,
    (SELECT e.position FROM events e WHERE e.stream_id = h.conversation_id AND e.version = 1),
    h.conversation_id
"""
_QUEUES = """
SELECT team, count(*) AS waiting FROM conversation_holds
WHERE agent IS NULL AND open AND team IS NOT NULL GROUP BY team
"""
_HELD = """
SELECT conversation_id FROM conversation_holds
WHERE agent = $1 AND team = $2 AND open
ORDER BY priority DESC, waiting_since, conversation_id
"""
_OPEN = """
SELECT count(*) FROM conversation_holds
WHERE customer_id = $1 AND open AND conversation_id <> $2
"""
_SEGMENTS_OF = """
SELECT coalesce(array_agg(s.key), '{}') FROM segment_members m
JOIN segments s ON s.segment_id = m.segment_id
WHERE m.customer_id = $1
"""

# For each conversation, its customer's segments and how many other conversations of theirs
# are open: one statement for a batch.
_SEGMENTS_AND_OPEN = """
SELECT t.thread,
       (SELECT coalesce(array_agg(s.key), '{}') FROM segment_members m
        JOIN segments s ON s.segment_id = m.segment_id
        WHERE m.customer_id = t.customer_id) AS keys,
       (SELECT count(*) FROM conversation_holds h
        WHERE h.customer_id = t.customer_id AND h.open AND h.conversation_id <> t.thread)
           AS others
FROM unnest($1::uuid[], $2::uuid[]) AS t(thread, customer_id)
"""


class PostgresRoster:
    """Reads the listings and loads on the pool, outside any unit of work: a decision made on
    them is checked again by the holds' trigger when it commits."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def teams(self) -> list[TeamView]:
        rows = await self.pool.fetch(_TEAMS)
        return [
            TeamView(
                key=row["key"],
                skills=frozenset(json.loads(row["skills"])),
                members=frozenset(json.loads(row["members"])),
                queued=row["waiting"],
            )
            for row in rows
        ]

    async def candidates(self, agents: Collection[str]) -> list[Candidate]:
        rows = await self.pool.fetch(_CANDIDATES, list(agents))
        return [
            Candidate(
                key=row["key"],
                skills=frozenset(json.loads(row["skills"])),
                presence=Presence(row["presence"]),
                capacity=_by_kind(json.loads(row["capacity"])),
                load=_by_kind(json.loads(row["load"])),
                last_assigned_at=row["last_assigned_at"],
            )
            for row in rows
        ]

    async def queued(self, team: str) -> list[UUID]:
        return [row["conversation_id"] for row in await self.pool.fetch(_QUEUED, team)]

    async def queues(self) -> dict[str, int]:
        return {row["team"]: row["waiting"] for row in await self.pool.fetch(_QUEUES)}

    async def held(self, agent: str, team: str) -> list[UUID]:
        return [row["conversation_id"] for row in await self.pool.fetch(_HELD, agent, team)]

    async def open_conversations(self, customer_id: UUID, besides: UUID) -> int:
        count: int = await self.pool.fetchval(_OPEN, customer_id, besides)
        return count

    async def segments_of(self, customer_id: UUID) -> frozenset[str]:
        keys: list[str] = await self.pool.fetchval(_SEGMENTS_OF, customer_id)
        return frozenset(keys)

    async def facts_of(
        self, customer_id: UUID, conditions: Sequence[Condition], now: datetime
    ) -> SegmentFacts | None:
        async with self.pool.acquire() as conn:
            found = await PostgresCustomerFacts(cast("asyncpg.Connection", conn)).facts(
                [customer_id], routing_conditions(conditions), now
            )
        return found.get(customer_id)

    async def customers_of(
        self, threads: Mapping[UUID, UUID], conditions: Sequence[Condition], now: datetime
    ) -> dict[UUID, CustomerReads]:
        customers = list(dict.fromkeys(threads.values()))
        async with self.pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            found = {
                row["thread"]: row
                for row in await conn.fetch(
                    _SEGMENTS_AND_OPEN, list(threads), list(threads.values())
                )
            }
            facts = await PostgresCustomerFacts(conn).facts(
                customers, routing_conditions(conditions), now
            )
        return {
            thread: CustomerReads(
                frozenset(found[thread]["keys"]), found[thread]["others"], facts.get(customer_id)
            )
            for thread, customer_id in threads.items()
        }


def routing_conditions(conditions: Sequence[Condition]) -> list[SegmentInForce]:
    """The routing document's conditions, as the customer facts' reader takes segments'."""
    return [
        SegmentInForce(_ROUTING, f"routing-{n}", 0, condition)
        for n, condition in enumerate(conditions)
    ]


def _by_kind(counts: dict[str, int]) -> dict[ChannelKind, int]:
    return {ChannelKind(kind): int(count) for kind, count in counts.items() if kind in _KINDS}


_KINDS = frozenset(kind.value for kind in ChannelKind)
_ROUTING = UUID("5b0e7c2a-94d1-4f3e-8a6b-1c2d3e4f5a60")  # names the routing conditions' reads
