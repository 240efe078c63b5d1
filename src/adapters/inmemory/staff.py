"""Agents and teams as their in-memory streams say (StaffDirectory)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from domain.conversation.agents import Agent, Team

if TYPE_CHECKING:
    from adapters.inmemory.storage import InMemoryStorage

__all__ = ["InMemoryStaffDirectory"]


class InMemoryStaffDirectory:
    """Reads the committed log, as the PostgreSQL listing is written with it."""

    def __init__(self, storage: InMemoryStorage) -> None:
        self.storage = storage

    def _teams(self) -> list[Team]:
        loaded = self.storage.events.load(self.storage.events.started_by(Team)).values()
        return cast("list[Team]", list(loaded))

    async def agent_keys(self) -> list[str]:
        loaded = self.storage.events.load(self.storage.events.started_by(Agent)).values()
        return sorted(cast("Agent", agent).key for agent in loaded)

    async def team_keys(self) -> list[str]:
        return sorted(team.key for team in self._teams())

    async def teams_of(self, agent: str) -> frozenset[str]:
        return frozenset(team.key for team in self._teams() if agent in team.members)
