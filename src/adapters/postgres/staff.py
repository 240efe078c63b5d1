"""Agents and teams from their listings (`listings.AGENTS`, `listings.TEAMS`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresStaffDirectory"]


class PostgresStaffDirectory:
    """StaffDirectory over the `agents` and `teams` tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def agent_keys(self) -> list[str]:
        return [row["key"] for row in await self.pool.fetch("SELECT key FROM agents ORDER BY key")]

    async def team_keys(self) -> list[str]:
        return [row["key"] for row in await self.pool.fetch("SELECT key FROM teams ORDER BY key")]

    async def teams_of(self, agent: str) -> frozenset[str]:
        rows = await self.pool.fetch("SELECT key FROM teams WHERE members ? $1", agent)
        return frozenset(row["key"] for row in rows)
