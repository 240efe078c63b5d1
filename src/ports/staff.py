"""Agents and teams as listed: which exist, and which teams an agent is on.

The Agent and Team aggregates are changed through the unit of work (`uow.repository(Agent)`, by
`agent_id(key)`; `uow.repository(Team)`, by `team_id(key)`); this port lists their keys, written
in the same commit as their events, so a list is never behind a change.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["StaffDirectory"]


class StaffDirectory(Protocol):
    """The keys of every agent and team, and each agent's teams."""

    async def agent_keys(self) -> list[str]:
        """Every registered agent's key, in key order."""
        ...

    async def team_keys(self) -> list[str]:
        """Every team's key, in key order."""
        ...

    async def teams_of(self, agent: str) -> frozenset[str]:
        """The keys of the teams that list `agent` as a member."""
        ...
