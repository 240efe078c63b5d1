"""Teams as data: create one, put agents on it or take them off, change the skills it covers
and its working hours (in its own time zone), list and read them. Every change is an event on
the team carrying who made it (`by`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.conversations.staff import (
    TeamProfile,
    Written,
    change_team,
    team_profile,
)
from application.conversations.staff_registration import register_once
from domain.conversation.agents import Agent, Team, agent_id, check_skills, team_id
from domain.shared.errors import NotFound

if TYPE_CHECKING:
    from domain.conversation.working_hours import WorkingHours
    from ports.clock import Clock
    from ports.staff import StaffDirectory
    from ports.unit_of_work import UnitsOfWork

__all__ = [
    "AddTeamMember",
    "ChangeTeamSkills",
    "CreateTeam",
    "RemoveTeamMember",
    "SetWorkingHours",
    "TeamQueries",
]


class CreateTeam:
    """A new team with no members; the same creation again is a retry, a different one under a
    taken key is refused."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(
        self,
        key: str,
        name: str,
        by: str,
        skills: frozenset[str] = frozenset(),
        working_hours: WorkingHours | None = None,
    ) -> Written:
        team = Team.create(key, name, by, self.clock.now(), skills, working_hours)
        return await register_once(
            self.uows,
            team,
            lambda found: (found.name, found.skills, found.working_hours),
            f"a team {key!r} exists already",
        )


class AddTeamMember:
    """Puts a registered agent on a team."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, team: str, agent: str, by: str) -> Written:
        async with self.uows() as uow:
            registered = await uow.repository(Agent).existing([agent_id(agent)])
        if not registered:
            raise NotFound(f"no agent {agent!r}")
        return await change_team(
            self.uows, team, lambda found: found.add_member(agent, by, self.clock.now())
        )


class RemoveTeamMember:
    """Takes an agent off a team; one not on it is a `NotAMember` error."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, team: str, agent: str, by: str) -> Written:
        def remove(found: Team) -> bool:
            found.remove_member(agent, by, self.clock.now())
            return True

        return await change_team(self.uows, team, remove)


class ChangeTeamSkills:
    """Replaces the skills a team covers."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, team: str, skills: frozenset[str], by: str) -> Written:
        skills = check_skills(skills)
        return await change_team(
            self.uows, team, lambda found: found.change_skills(skills, by, self.clock.now())
        )


class SetWorkingHours:
    """Sets a team's working hours in its time zone (None: always open)."""

    def __init__(self, uows: UnitsOfWork, clock: Clock) -> None:
        self.uows = uows
        self.clock = clock

    async def __call__(self, team: str, hours: WorkingHours | None, by: str) -> Written:
        return await change_team(
            self.uows, team, lambda found: found.set_working_hours(hours, by, self.clock.now())
        )


class TeamQueries:
    """Teams as committed, with whether each is open now."""

    def __init__(self, uows: UnitsOfWork, staff: StaffDirectory, clock: Clock) -> None:
        self.uows = uows
        self.staff = staff
        self.clock = clock

    async def list(self) -> list[TeamProfile]:
        keys = await self.staff.team_keys()
        async with self.uows() as uow:
            found = await uow.repository(Team).get([team_id(key) for key in keys])
        now = self.clock.now()
        return [team_profile(team, now) for team in sorted(found.values(), key=lambda t: t.key)]

    async def get(self, key: str) -> TeamProfile:
        async with self.uows() as uow:
            found = (await uow.repository(Team).get([team_id(key)])).get(team_id(key))
        if found is None:
            raise NotFound(f"no team {key!r}")
        return team_profile(found, self.clock.now())
