"""Hands queued conversations to agents with room: nothing waits while someone could take it.

Each team's queue is offered in its order (`routing.offer`: the highest priority first, then the
soonest SLA breach, then the longest waiting) to the members who can take each conversation,
the one with the most free capacity first. Each offer is its own commit, an `Assigned` event with
its reason; the commit fails whole if the agent's room was taken meanwhile (`AgentOverCapacity`)
and that conversation waits for the next drain, which whatever freed or took the room starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from application.conflicts import retry_on_conflict
from application.conversations.route_conversation import ROUTER, Router, queue_entry
from domain.conversation.agents import Team, team_id
from domain.conversation.aggregate import ActingAgent, AlreadyAssigned, Conversation
from domain.conversation.routing import offer
from domain.conversation.vocabulary import Presence
from ports.conversation_roster import AgentOverCapacity

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from domain.conversation.routing import Candidate, Offer, TeamView
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.unit_of_work import UnitsOfWork

__all__ = ["DrainQueues", "Drained"]


@dataclass(frozen=True, slots=True)
class Drained:
    """The conversations a drain assigned, in the order it assigned them, with their agents."""

    assigned: tuple[Offer, ...]


class DrainQueues:
    """Offers the queued conversations of the teams asked (every team with a queue by default)."""

    def __init__(self, uows: UnitsOfWork, roster: Roster, clock: Clock) -> None:
        self.uows = uows
        self.roster = roster
        self.router = Router(roster)
        self.clock = clock

    async def __call__(self, teams: Collection[str] | None = None) -> Drained:
        load = await self.router.load()
        agents = load.agents
        # The roster's teams say how many wait in each queue: a drain that finds no queue with
        # anyone free to take from it reads nothing more (a busy desk queues many a second).
        wanted = [
            view
            for view in load.teams
            if view.queued and (teams is None or view.key in teams) and _anyone_free(view, agents)
        ]
        if not wanted:
            return Drained(())
        async with self.uows() as uow:
            policy = await self.router.policy(uow)
        assigned: list[Offer] = []
        now = self.clock.now()
        for view in sorted(wanted, key=lambda found: found.key):
            if not _anyone_free(view, agents):
                continue  # its queue is not even read: a long one stays cheap to pass by
            team = view.key
            queued = await self.roster.queued(team)
            async with self.uows() as uow:
                found = await uow.repository(Conversation).get(queued)
                known = (await uow.repository(Team).get([team_id(team)])).get(team_id(team))
            hours = None if known is None else known.working_hours
            arrival = {conversation: place for place, conversation in enumerate(queued)}
            entries = [
                replace(queue_entry(c, policy, hours), arrival=arrival[c.id])
                for c in found.values()
                if c.is_open and c.agent is None and c.team == team and c.channel_kind
            ]
            for made in offer(entries, view, agents, now):
                if await self._assign(made, view, now):
                    assigned.append(made)
            agents = (await self.router.load()).agents
        return Drained(tuple(assigned))

    async def _assign(self, made: Offer, team: TeamView, now: datetime) -> bool:
        reason = f"offered from the {team.key} queue as {made.agent} had room"

        async def attempt() -> bool:
            async with self.uows() as uow:
                conversations = uow.repository(Conversation)
                conversation = (await conversations.get([made.conversation_id])).get(
                    made.conversation_id
                )
                if conversation is None or not conversation.is_open:
                    return False
                if conversation.team != team.key or conversation.agent is not None:
                    return False  # moved or taken since the queue was read
                agent = ActingAgent(made.agent, frozenset({team.key}))
                conversation.assign(agent, team.key, reason, ROUTER, now)
                conversations.add(conversation)
                return True

        try:
            return await retry_on_conflict(attempt, attempts=3)
        except (AgentOverCapacity, AlreadyAssigned):
            return False


def _anyone_free(team: TeamView, agents: Collection[Candidate]) -> bool:
    """Whether a member is available with room for a conversation of some kind."""
    return any(
        agent.key in team.members and agent.presence is Presence.AVAILABLE and agent.free(kind)
        for agent in agents
        for kind in agent.capacity
    )
