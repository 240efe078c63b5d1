"""What the agent and team routes share: the keys their paths name, checked, and the answer to
a change, the agent or team as it stands after it (with where it lives)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.shared.keys import check_key
from entrypoints.http.keys import path_key
from entrypoints.http.staff_schemas import agent_out, team_out, written

if TYPE_CHECKING:
    from litestar import Response

    from application.conversations.agents import AgentQueries
    from application.conversations.staff import Written
    from application.conversations.teams import TeamQueries
    from entrypoints.http.staff_schemas import AgentOut, TeamOut

__all__ = ["agent_key", "agent_written", "team_key", "team_written"]


def agent_key(key: str) -> str:
    """An agent's key from a path, or 400 naming it."""
    return path_key(key, lambda k: check_key(k, "agent", "ana.silva"), "agent")


def team_key(key: str) -> str:
    """A team's key from a path, or 400 naming it."""
    return path_key(key, lambda k: check_key(k, "team", "billing"), "team")


async def agent_written(agents: AgentQueries, key: str, done: Written) -> Response[AgentOut]:
    """The agent under `key` as it stands after the change `done`."""
    return written(agent_out(await agents.get(key)), done, f"/v1/agents/{key}")


async def team_written(teams: TeamQueries, key: str, done: Written) -> Response[TeamOut]:
    """The team under `key` as it stands after the change `done`."""
    return written(team_out(await teams.get(key)), done, f"/v1/teams/{key}")
