"""Agents as data: register, list, read; change skills, capacity per channel kind, presence."""

from __future__ import annotations

from typing import Any

from dishka.integrations.litestar import FromDishka, inject
from litestar import Controller, Request, Response, get, post, put
from litestar.exceptions import PermissionDeniedException

from application.conversations.agents import (
    AgentQueries,
    ChangeAgentCapacity,
    ChangeAgentPresence,
    ChangeAgentSkills,
    RegisterAgent,
)
from entrypoints.http.auth import READERS, allow, author
from entrypoints.http.principal import principal_of
from entrypoints.http.staff_answers import agent_key, agent_written
from entrypoints.http.staff_schemas import (
    AgentIn,
    AgentOut,
    AgentsOut,
    CapacityIn,
    PresenceIn,
    SkillsIn,
    agent_out,
    staff_problems,
)
from ports.api_keys import Role

__all__ = ["AgentsController"]


class AgentsController(Controller):
    path = "/v1/agents"
    tags = ["agents"]
    exception_handlers = staff_problems

    @post(
        operation_id="registerAgent",
        name="agents:register",
        guards=[allow()],
        status_code=201,
        summary="Register an agent: key, name, skills, capacity per channel kind",
        description=(
            'Body: `{"key": "ana.silva", "name": "Ana Silva", "skills": ["billing"], '
            '"capacity": {"chat": 3, "email": 10}}`. The agent starts offline. 201 when '
            "registered; 200 when the key holds this very agent (a retry); 409 when it holds "
            "another."
        ),
    )
    @inject
    async def register_agent(
        self,
        data: AgentIn,
        request: Request[Any, Any, Any],
        register: FromDishka[RegisterAgent],
        agents: FromDishka[AgentQueries],
    ) -> Response[AgentOut]:
        done = await register(
            data.key, data.name, frozenset(data.skills), data.capacity, author(request)
        )
        return await agent_written(agents, data.key, done)

    @get(
        operation_id="listAgents",
        name="agents:list",
        guards=[allow(*READERS)],
        summary="Every agent by key, with skills, capacity, presence, teams and load",
    )
    @inject
    async def list_agents(self, agents: FromDishka[AgentQueries]) -> AgentsOut:
        return AgentsOut([agent_out(agent) for agent in await agents.list()], None)

    @get(
        "/{key:str}",
        operation_id="getAgent",
        name="agents:get",
        guards=[allow(*READERS)],
        summary="One agent: skills, capacity per channel kind, presence and since when, teams",
        description=(
            "`load` says, per channel kind, how many open conversations the agent holds "
            "(`held`) and may hold at once (`capacity`), as of the last commit."
        ),
    )
    @inject
    async def get_agent(self, key: str, agents: FromDishka[AgentQueries]) -> AgentOut:
        return agent_out(await agents.get(agent_key(key)))

    @put(
        "/{key:str}/skills",
        operation_id="changeAgentSkills",
        name="agents:skills",
        guards=[allow()],
        summary="Replace an agent's skills",
    )
    @inject
    async def change_skills(
        self,
        key: str,
        data: SkillsIn,
        request: Request[Any, Any, Any],
        change: FromDishka[ChangeAgentSkills],
        agents: FromDishka[AgentQueries],
    ) -> Response[AgentOut]:
        key = agent_key(key)
        done = await change(key, frozenset(data.skills), author(request))
        return await agent_written(agents, key, done)

    @put(
        "/{key:str}/capacity",
        operation_id="changeAgentCapacity",
        name="agents:capacity",
        guards=[allow()],
        summary="Replace how many conversations of each channel kind the agent holds at once",
        description=(
            'Body: `{"capacity": {"chat": 3, "email": 10}}`; a kind left out is 0. Lowering it '
            "below what the agent holds takes nothing away: they get no more until under it."
        ),
    )
    @inject
    async def change_capacity(
        self,
        key: str,
        data: CapacityIn,
        request: Request[Any, Any, Any],
        change: FromDishka[ChangeAgentCapacity],
        agents: FromDishka[AgentQueries],
    ) -> Response[AgentOut]:
        key = agent_key(key)
        done = await change(key, data.capacity, author(request))
        return await agent_written(agents, key, done)

    @put(
        "/{key:str}/presence",
        operation_id="changeAgentPresence",
        name="agents:presence",
        guards=[allow(Role.AGENT)],
        summary="Available, away or offline: only an available agent takes new conversations",
        description="An agent key changes its own agent's presence only; admin any agent's.",
    )
    @inject
    async def change_presence(
        self,
        key: str,
        data: PresenceIn,
        request: Request[Any, Any, Any],
        change: FromDishka[ChangeAgentPresence],
        agents: FromDishka[AgentQueries],
    ) -> Response[AgentOut]:
        key = agent_key(key)
        principal = await principal_of(request)
        if principal.key.role is Role.AGENT and principal.key.agent != key:
            raise PermissionDeniedException("an agent key changes its own agent's presence only")
        done = await change(key, data.presence, principal.by)
        return await agent_written(agents, key, done)
