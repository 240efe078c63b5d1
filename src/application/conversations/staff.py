"""Loading, changing and saving an agent or a team named by key; their plain views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from application.conflicts import retry_on_conflict
from domain.conversation.agents import Agent, Team, agent_id, team_id
from domain.shared.errors import DomainError, NotFound

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime
    from uuid import UUID

    from domain.conversation.vocabulary import ChannelKind
    from domain.conversation.working_hours import WorkingHours
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "AgentProfile",
    "AlreadyRegistered",
    "KindLoad",
    "TeamProfile",
    "Written",
    "agent_profile",
    "change_agent",
    "change_team",
    "team_profile",
]

S = TypeVar("S", Agent, Team)


class AlreadyRegistered(DomainError):
    """An agent or a team with that key exists, and is not what was asked for."""


@dataclass(frozen=True, slots=True)
class KindLoad:
    """How many open conversations of a channel kind an agent holds, and may hold at once (held
    may be over capacity for a while after the capacity was lowered)."""

    held: int
    capacity: int


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent as the API shows them, with their load per channel kind."""

    key: str
    name: str
    skills: tuple[str, ...]
    capacity: dict[str, int]
    presence: str
    presence_since: datetime
    teams: tuple[str, ...]
    load: dict[str, KindLoad]


@dataclass(frozen=True, slots=True)
class TeamProfile:
    """A team as the API shows it."""

    key: str
    name: str
    skills: tuple[str, ...]
    members: tuple[str, ...]
    working_hours: WorkingHours | None
    open_now: bool


@dataclass(frozen=True, slots=True)
class Written:
    """What a command did to an agent or a team, and how it stands after."""

    key: str
    created: bool
    changed: bool  # False: it was so already, nothing was recorded


def agent_profile(
    agent: Agent, teams: frozenset[str], held: Mapping[ChannelKind, int]
) -> AgentProfile:
    """The agent with the teams they are on and what they hold of each kind: every kind they
    have a capacity for or hold something of."""
    kinds = sorted({*agent.capacity, *(kind for kind, count in held.items() if count)})
    return AgentProfile(
        key=agent.key,
        name=agent.name,
        skills=tuple(sorted(agent.skills)),
        capacity={str(kind): count for kind, count in sorted(agent.capacity.items())},
        presence=str(agent.presence),
        presence_since=agent.presence_since,
        teams=tuple(sorted(teams)),
        load={str(kind): KindLoad(held.get(kind, 0), agent.capacity_for(kind)) for kind in kinds},
    )


def team_profile(team: Team, now: datetime) -> TeamProfile:
    return TeamProfile(
        key=team.key,
        name=team.name,
        skills=tuple(sorted(team.skills)),
        members=tuple(sorted(team.members)),
        working_hours=team.working_hours,
        open_now=team.is_open(now),
    )


async def _change(
    uows: UnitsOfWork,
    kind: type[S],
    stream: UUID,
    what: str,
    key: str,
    change: Callable[[S], bool],
) -> Written:
    async def attempt() -> Written:
        async with uows() as uow:
            repository = uow.repository(kind)
            found = (await repository.get([stream])).get(stream)
            if found is None:
                raise NotFound(f"no {what} {key!r}")
            changed = change(found)
            if changed:
                repository.add(found)
            return Written(key, created=False, changed=changed)

    return await retry_on_conflict(attempt)


async def change_agent(uows: UnitsOfWork, key: str, change: Callable[[Agent], bool]) -> Written:
    """Loads the agent under `key`, calls `change` and saves what it recorded, if anything."""
    return await _change(uows, Agent, agent_id(key), "agent", key, change)


async def change_team(uows: UnitsOfWork, key: str, change: Callable[[Team], bool]) -> Written:
    """Loads the team under `key`, calls `change` and saves what it recorded, if anything."""
    return await _change(uows, Team, team_id(key), "team", key, change)
