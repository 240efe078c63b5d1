"""The wire shapes of agents and teams, and the problems their commands answer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response

from application.conversations.staff import AgentProfile, AlreadyRegistered, TeamProfile
from domain.conversation.agents import MAX_CAPACITY, NotAMember
from domain.conversation.vocabulary import ChannelKind, Presence
from domain.conversation.working_hours import WorkingHours
from entrypoints.http.keys import Key
from entrypoints.http.problems import problem

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

    from application.conversations.staff import Written

__all__ = [
    "AgentIn",
    "AgentOut",
    "AgentsOut",
    "CapacityIn",
    "PresenceIn",
    "SkillsIn",
    "TeamIn",
    "TeamOut",
    "TeamsOut",
    "WorkingHoursIn",
    "agent_out",
    "staff_problems",
    "team_out",
    "written",
]

Skills = Annotated[list[Key], msgspec.Meta(max_length=100)]
Capacity = dict[ChannelKind, Annotated[int, msgspec.Meta(ge=0, le=MAX_CAPACITY)]]
StaffName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AgentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new agent: their key (login name), name, skills and capacity per channel kind."""

    key: Key
    name: StaffName
    skills: Skills = msgspec.field(default_factory=list)
    capacity: Capacity = msgspec.field(default_factory=dict)


class SkillsIn(msgspec.Struct, forbid_unknown_fields=True):
    skills: Skills


class CapacityIn(msgspec.Struct, forbid_unknown_fields=True):
    """Conversations of each kind at once, e.g. `{"chat": 3, "email": 10}`; a kind left out is 0."""

    capacity: Capacity


class PresenceIn(msgspec.Struct, forbid_unknown_fields=True):
    presence: Presence


class TeamIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new team: key, name, the skills it covers, its working hours (none: always open)."""

    key: Key
    name: StaffName
    skills: Skills = msgspec.field(default_factory=list)
    working_hours: WorkingHours | None = None


class WorkingHoursIn(msgspec.Struct, forbid_unknown_fields=True):
    """`null` takes the working hours off: the team is always open."""

    working_hours: WorkingHours | None


class KindLoadOut(msgspec.Struct):
    """Open conversations of a channel kind the agent holds, and may hold at once."""

    held: int
    capacity: int


class AgentOut(msgspec.Struct):
    key: str
    name: str
    skills: list[str]
    capacity: dict[str, int]
    presence: str
    presence_since: datetime
    teams: list[str]
    load: dict[str, KindLoadOut]


class AgentsOut(msgspec.Struct):
    """Every agent on one page: the staff is small, so `next_cursor` is always null."""

    items: list[AgentOut]
    next_cursor: str | None


class TeamOut(msgspec.Struct):
    key: str
    name: str
    skills: list[str]
    members: list[str]
    working_hours: WorkingHours | None
    open_now: bool


class TeamsOut(msgspec.Struct):
    """Every team on one page: `next_cursor` is always null."""

    items: list[TeamOut]
    next_cursor: str | None


def agent_out(agent: AgentProfile) -> AgentOut:
    return AgentOut(
        agent.key,
        agent.name,
        list(agent.skills),
        agent.capacity,
        agent.presence,
        agent.presence_since,
        list(agent.teams),
        {kind: KindLoadOut(found.held, found.capacity) for kind, found in agent.load.items()},
    )


def team_out(team: TeamProfile) -> TeamOut:
    return TeamOut(
        team.key,
        team.name,
        list(team.skills),
        list(team.members),
        team.working_hours,
        team.open_now,
    )


def written(body: Any, done: Written, location: str) -> Response[Any]:
    """201 when created, else 200; `Chorus-Changed: false` when nothing was recorded."""
    return Response(
        body,
        status_code=201 if done.created else 200,
        headers={"Location": location, "Chorus-Changed": str(done.changed).lower()},
    )


def _exists(request: Request[Any, Any, Any], exc: AlreadyRegistered) -> Response[Any]:
    return problem(409, "already-registered", "That key is taken", str(exc))


def _not_a_member(request: Request[Any, Any, Any], exc: NotAMember) -> Response[Any]:
    return problem(404, "not-a-member", "The agent is not on the team", str(exc))


staff_problems: ExceptionHandlersMap = {
    AlreadyRegistered: _exists,
    NotAMember: _not_a_member,
}
