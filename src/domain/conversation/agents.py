"""Agents and teams as data: every change to who works, with what skills and how much at once,
is an event carrying who made it (`by`).

An agent has skills, a capacity per channel kind (3 chats and 10 emails at once) and a presence;
only an available agent takes new conversations. A team has members (agent keys), the skills it
covers, and optional working hours in its own time zone (`is_open`). Membership lives on the
team alone: `Team.members` is the one answer to "is this agent on that team", and an agent's
teams are the teams that list them.

Routing reads neither aggregate: it takes their plain views, `Agent.candidate(load)` and
`Team.view(queued)`, with the load the inbox read model counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime  # events carry these types; eventsourcing resolves them at run time
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.conversation.routing import Candidate, TeamView
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import WorkingHours
from domain.shared.errors import DomainError, InvalidValue
from domain.shared.keys import check_key, keyed_id
from domain.shared.topics import StoredAs

__all__ = [
    "MAX_CAPACITY",
    "Agent",
    "NotAMember",
    "Team",
    "agent_id",
    "check_capacity",
    "check_skills",
    "team_id",
]

_AGENTS = UUID("0b7c2f4e-61d8-4a3f-9e52-8c1d7a6b3e90")
_TEAMS = UUID("d45e9a01-3c7b-4f28-b6e1-52a8c0f9d713")

MAX_CAPACITY = 100
"""Conversations of one kind an agent may hold at once."""


def agent_id(key: str) -> UUID:
    """The id of the agent under `key` (their login name, e.g. `ana.silva`)."""
    return keyed_id(_AGENTS, check_key(key, "agent", "ana.silva"))


def team_id(key: str) -> UUID:
    """The id of the team under `key`, e.g. `billing`."""
    return keyed_id(_TEAMS, check_key(key, "team", "billing"))


def check_skills(skills: frozenset[str]) -> frozenset[str]:
    """Skills are keys: `billing`, `es`, `returns`."""
    for skill in skills:
        check_key(skill, "skill", "billing")
    return frozenset(skills)


def check_capacity(capacity: Mapping[ChannelKind, int]) -> dict[ChannelKind, int]:
    """How many conversations of each kind at once, 0 to `MAX_CAPACITY`; a kind left out is 0."""
    for kind, count in capacity.items():
        if not 0 <= count <= MAX_CAPACITY:
            raise InvalidValue(f"capacity.{kind}", f"{count} is not between 0 and {MAX_CAPACITY}")
    return {ChannelKind(kind): count for kind, count in sorted(capacity.items())}


class NotAMember(DomainError):
    """The agent is not on the team."""

    def __init__(self, team: str, agent: str) -> None:
        super().__init__(f"agent {agent!r} is not on team {team!r}")
        self.team = team
        self.agent = agent


class Agent(Aggregate):
    """A person who answers customers: skills, capacity per channel kind, presence."""

    stored_as = StoredAs("domain.conversation.agents:Agent")

    @event("Registered")
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        key: str,
        name: str,
        skills: frozenset[str],
        capacity: dict[ChannelKind, int],
        by: str,
    ) -> None:
        self.key = key
        self.name = name
        self.skills = skills
        self.capacity = capacity
        self.presence = Presence.OFFLINE
        self.presence_since = timestamp

    @classmethod
    def register(
        cls,
        key: str,
        name: str,
        skills: frozenset[str],
        capacity: Mapping[ChannelKind, int],
        by: str,
        at: datetime,
    ) -> Agent:
        """A new agent under `key`, offline until they say otherwise."""
        return cls(
            id=agent_id(key),
            timestamp=at,
            key=key,
            name=name,
            skills=check_skills(skills),
            capacity=check_capacity(capacity),
            by=by,
        )

    def change_skills(self, skills: frozenset[str], by: str, at: datetime) -> bool:
        """Replaces the agent's skills; False when they are the same."""
        skills = check_skills(skills)
        if skills == self.skills:
            return False
        self._skills_changed(timestamp=at, skills=skills, by=by)
        return True

    def change_capacity(self, capacity: Mapping[ChannelKind, int], by: str, at: datetime) -> bool:
        """Replaces the capacity per channel kind; False when it is the same. Lowering it below
        what the agent holds takes nothing away: they get no more until under it."""
        checked = check_capacity(capacity)
        if checked == self.capacity:
            return False
        self._capacity_changed(timestamp=at, capacity=checked, by=by)
        return True

    def change_presence(self, presence: Presence, by: str, at: datetime) -> bool:
        """Available, away or offline; False when unchanged."""
        if presence is self.presence:
            return False
        self._presence_changed(timestamp=at, presence=presence, by=by)
        return True

    def capacity_for(self, kind: ChannelKind) -> int:
        """Conversations of a kind the agent may hold at once."""
        return self.capacity.get(kind, 0)

    def candidate(
        self, load: Mapping[ChannelKind, int], last_assigned_at: datetime | None = None
    ) -> Candidate:
        """The agent as routing sees them, holding `load` conversations of each kind."""
        return Candidate(
            key=self.key,
            skills=self.skills,
            presence=self.presence,
            capacity=dict(self.capacity),
            load=dict(load),
            last_assigned_at=last_assigned_at,
        )

    @event("SkillsChanged")
    def _skills_changed(self, timestamp: datetime, skills: frozenset[str], by: str) -> None:
        self.skills = skills

    @event("CapacityChanged")
    def _capacity_changed(
        self, timestamp: datetime, capacity: dict[ChannelKind, int], by: str
    ) -> None:
        self.capacity = capacity

    @event("PresenceChanged")
    def _presence_changed(self, timestamp: datetime, presence: Presence, by: str) -> None:
        self.presence = presence
        self.presence_since = timestamp


class Team(Aggregate):
    """Agents who share a queue: members, the skills the team covers, its working hours."""

    stored_as = StoredAs("domain.conversation.agents:Team")

    @event("Created")
    def __init__(
        self,
        id: UUID,
        timestamp: datetime,
        key: str,
        name: str,
        skills: frozenset[str],
        working_hours: WorkingHours | None,
        by: str,
    ) -> None:
        self.key = key
        self.name = name
        self.skills = skills
        self.working_hours = working_hours
        self.members: frozenset[str] = frozenset()

    @classmethod
    def create(
        cls,
        key: str,
        name: str,
        by: str,
        at: datetime,
        skills: frozenset[str] = frozenset(),
        working_hours: WorkingHours | None = None,
    ) -> Team:
        """A new team under `key`, with no members; always open unless it has working hours."""
        return cls(
            id=team_id(key),
            timestamp=at,
            key=key,
            name=name,
            skills=check_skills(skills),
            working_hours=working_hours,
            by=by,
        )

    def add_member(self, agent: str, by: str, at: datetime) -> bool:
        """Puts an agent (by key) on the team; False if already on it."""
        check_key(agent, "agent", "ana.silva")
        if agent in self.members:
            return False
        self._member_added(timestamp=at, agent=agent, by=by)
        return True

    def remove_member(self, agent: str, by: str, at: datetime) -> None:
        """Takes an agent off the team; the conversations of the team they hold are then
        released back to its queue (`Conversation.release`) by the threads process."""
        if agent not in self.members:
            raise NotAMember(self.key, agent)
        self._member_removed(timestamp=at, agent=agent, by=by)

    def change_skills(self, skills: frozenset[str], by: str, at: datetime) -> bool:
        """Replaces the skills the team covers; False when they are the same."""
        skills = check_skills(skills)
        if skills == self.skills:
            return False
        self._skills_changed(timestamp=at, skills=skills, by=by)
        return True

    def set_working_hours(self, hours: WorkingHours | None, by: str, at: datetime) -> bool:
        """Sets the team's working hours (None: always open); False when unchanged."""
        if hours == self.working_hours:
            return False
        self._working_hours_set(timestamp=at, working_hours=hours, by=by)
        return True

    def is_open(self, at: datetime) -> bool:
        """Whether the team works at `at`: always, without working hours."""
        return self.working_hours is None or self.working_hours.is_open(at)

    def view(self, queued: int = 0) -> TeamView:
        """The team as routing sees it, with `queued` conversations waiting in its queue."""
        return TeamView(key=self.key, skills=self.skills, members=self.members, queued=queued)

    @event("MemberAdded")
    def _member_added(self, timestamp: datetime, agent: str, by: str) -> None:
        self.members = self.members | {agent}

    @event("MemberRemoved")
    def _member_removed(self, timestamp: datetime, agent: str, by: str) -> None:
        self.members = self.members - {agent}

    @event("SkillsChanged")
    def _skills_changed(self, timestamp: datetime, skills: frozenset[str], by: str) -> None:
        self.skills = skills

    @event("WorkingHoursSet")
    def _working_hours_set(
        self, timestamp: datetime, working_hours: WorkingHours | None, by: str
    ) -> None:
        self.working_hours = working_hours
