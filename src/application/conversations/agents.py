"""Agents as data: register one, change their skills, capacity or presence, list and read them.

Every change is an event on the agent carrying who made it (`by`, the acting key); a change to
what the agent already is records nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conversations.staff import (
    AgentProfile,
    Written,
    agent_profile,
    change_agent,
)
from application.conversations.staff_registration import register_once
from domain.conversation.agents import Agent, agent_id, check_capacity, check_skills
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from domain.conversation.vocabulary import ChannelKind, Presence
    from ports.clock import Clock
    from ports.conversation_roster import Roster
    from ports.staff import StaffDirectory
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "AgentQueries",
    "ChangeAgentCapacity",
    "ChangeAgentPresence",
    "ChangeAgentSkills",
    "RegisterAgent",
]


class RegisterAgent:
    """A new agent, offline until they say otherwise; the same registration again is a retry,
    a different one under a taken key is refused."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self,
        key: str,
        name: str,
        skills: frozenset[str],
        capacity: Mapping[ChannelKind, int],
        by: str,
    ) -> Written:
        agent = Agent.register(key, name, skills, capacity, by, self.clock.now())
        return await register_once(
            self.uows,
            agent,
            lambda found: (found.name, found.skills, found.capacity),
            f"an agent {key!r} is registered already",
        )


class ChangeAgentSkills:
    """Replaces an agent's skills."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, key: str, skills: frozenset[str], by: str) -> Written:
        skills = check_skills(skills)
        return await change_agent(
            self.uows, key, lambda agent: agent.change_skills(skills, by, self.clock.now())
        )


class ChangeAgentCapacity:
    """Replaces how many conversations of each channel kind an agent holds at once."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, key: str, capacity: Mapping[ChannelKind, int], by: str) -> Written:
        checked = check_capacity(capacity)
        return await change_agent(
            self.uows, key, lambda agent: agent.change_capacity(checked, by, self.clock.now())
        )


class ChangeAgentPresence:
    """Available, away or offline: only an available agent takes new conversations."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, key: str, presence: Presence, by: str) -> Written:
        return await change_agent(
            self.uows, key, lambda agent: agent.change_presence(presence, by, self.clock.now())
        )


class AgentQueries:
    """Agents as committed, with the teams each is on and their load per channel kind (the
    roster's, as the last commit left it)."""

    def __init__(self, uows: UnitsOfWork, staff: StaffDirectory, roster: Roster) -> None:
        self.uows = uows
        self.staff = staff
        self.roster = roster

    async def list(self) -> list[AgentProfile]:
        keys = await self.staff.agent_keys()
        async with self.uows() as uow:
            found = await uow.repository(Agent).get([agent_id(key) for key in keys])
        agents = sorted(found.values(), key=lambda agent: agent.key)
        loads = await self._loads([agent.key for agent in agents])
        return [
            agent_profile(agent, await self.staff.teams_of(agent.key), loads.get(agent.key, {}))
            for agent in agents
        ]

    async def get(self, key: str) -> AgentProfile:
        async with self.uows() as uow:
            found = (await uow.repository(Agent).get([agent_id(key)])).get(agent_id(key))
        if found is None:
            raise NotFound(f"no agent {key!r}")
        loads = await self._loads([key])
        return agent_profile(found, await self.staff.teams_of(key), loads.get(key, {}))

    async def _loads(self, keys: Sequence[str]) -> dict[str, dict[ChannelKind, int]]:
        return {found.key: dict(found.load) for found in await self.roster.candidates(keys)}
