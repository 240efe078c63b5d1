"""Teams as data: create, list, read; members, the skills a team covers, its working hours."""

from __future__ import annotations

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, delete, get, post, put

from application.conversations.teams import (
    AddTeamMember,
    ChangeTeamSkills,
    CreateTeam,
    RemoveTeamMember,
    SetWorkingHours,
    TeamQueries,
)
from entrypoints.http.auth import READERS, allow, author
from entrypoints.http.staff_answers import agent_key, team_key, team_written
from entrypoints.http.staff_schemas import (
    SkillsIn,
    TeamIn,
    TeamOut,
    TeamsOut,
    WorkingHoursIn,
    staff_problems,
    team_out,
)

__all__ = ["TeamsController"]


class TeamsController(Controller):
    path = "/v1/teams"
    tags = ["teams"]
    exception_handlers = staff_problems

    @post(
        operation_id="createTeam",
        name="teams:create",
        guards=[allow()],
        status_code=201,
        summary="Create a team: key, name, skills it covers, working hours in its time zone",
        description=(
            'Body: `{"key": "billing", "name": "Billing", "skills": ["billing"], '
            '"working_hours": {"time_zone": "Europe/Lisbon", "windows": [{"days": ["mon", '
            '"tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}]}}`; without '
            "working hours the team is always open. 201 when created; 200 when the key holds "
            "this very team (a retry); 409 when it holds another."
        ),
    )
    @inject
    async def create_team(
        self,
        data: TeamIn,
        request: Request[Any, Any, Any],
        create: FromDishka[CreateTeam],
        teams: FromDishka[TeamQueries],
    ) -> Response[TeamOut]:
        done = await create(
            data.key, data.name, author(request), frozenset(data.skills), data.working_hours
        )
        return await team_written(teams, data.key, done)

    @get(
        operation_id="listTeams",
        name="teams:list",
        guards=[allow(*READERS)],
        summary="Every team by key, with members, skills, working hours and whether open now",
    )
    @inject
    async def list_teams(self, teams: FromDishka[TeamQueries]) -> TeamsOut:
        return TeamsOut([team_out(team) for team in await teams.list()], None)

    @get(
        "/{key:str}",
        operation_id="getTeam",
        name="teams:get",
        guards=[allow(*READERS)],
        summary="One team: members, skills, working hours, whether open now",
    )
    @inject
    async def get_team(self, key: str, teams: FromDishka[TeamQueries]) -> TeamOut:
        return team_out(await teams.get(team_key(key)))

    @put(
        "/{key:str}/members/{agent:str}",
        operation_id="addTeamMember",
        name="teams:add-member",
        guards=[allow()],
        summary="Put a registered agent on the team",
    )
    @inject
    async def add_member(
        self,
        key: str,
        agent: str,
        request: Request[Any, Any, Any],
        add: FromDishka[AddTeamMember],
        teams: FromDishka[TeamQueries],
    ) -> Response[TeamOut]:
        key = team_key(key)
        done = await add(key, agent_key(agent), author(request))
        return await team_written(teams, key, done)

    @delete(
        "/{key:str}/members/{agent:str}",
        operation_id="removeTeamMember",
        name="teams:remove-member",
        guards=[allow()],
        status_code=200,
        summary="Take an agent off the team (404 when not on it)",
    )
    @inject
    async def remove_member(
        self,
        key: str,
        agent: str,
        request: Request[Any, Any, Any],
        remove: FromDishka[RemoveTeamMember],
        teams: FromDishka[TeamQueries],
    ) -> Response[TeamOut]:
        key = team_key(key)
        done = await remove(key, agent_key(agent), author(request))
        return await team_written(teams, key, done)

    @put(
        "/{key:str}/skills",
        operation_id="changeTeamSkills",
        name="teams:skills",
        guards=[allow()],
        summary="Replace the skills the team covers",
    )
    @inject
    async def change_skills(
        self,
        key: str,
        data: SkillsIn,
        request: Request[Any, Any, Any],
        change: FromDishka[ChangeTeamSkills],
        teams: FromDishka[TeamQueries],
    ) -> Response[TeamOut]:
        key = team_key(key)
        done = await change(key, frozenset(data.skills), author(request))
        return await team_written(teams, key, done)

    @put(
        "/{key:str}/working_hours",
        operation_id="setTeamWorkingHours",
        name="teams:working-hours",
        guards=[allow()],
        summary="Set the team's working hours in its time zone (null: always open)",
    )
    @inject
    async def set_working_hours(
        self,
        key: str,
        data: WorkingHoursIn,
        request: Request[Any, Any, Any],
        set_hours: FromDishka[SetWorkingHours],
        teams: FromDishka[TeamQueries],
    ) -> Response[TeamOut]:
        key = team_key(key)
        done = await set_hours(key, data.working_hours, author(request))
        return await team_written(teams, key, done)
