"""Creating an API key, as `/v1/keys` and `chorus keys create` do: an agent key names an
agent that exists, and the teams a key is limited to exist.

The key store checks the key's shape (`ports.api_keys.check_key_scope`: which roles take
teams or an agent, what a key looks like); this checks it against the staff directory, so a
key never acts as an agent nobody registered, nor for a team nobody created (a typo would
otherwise give a key that may do nothing, or later the powers of a team created under that
name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.shared.errors import InvalidValue
from ports.api_keys import Role, check_key_scope

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ports.api_keys import ApiKeyStore, NewApiKey
    from ports.staff import StaffDirectory

__all__ = ["CreateKey"]


class CreateKey:
    def __init__(self, keys: ApiKeyStore, staff: StaffDirectory) -> None:
        self.keys = keys
        self.staff = staff

    async def check(self, role: Role, agent: str | None, teams: Sequence[str]) -> None:
        """`InvalidValue` naming the field (`agent`, `teams[i]`) of a key that cannot be."""
        check_key_scope(role, agent, teams)
        if role is Role.AGENT:
            if agent is None:
                raise InvalidValue(
                    "agent", "an agent key names the agent it acts as (their key, e.g. ana.silva)"
                )
            if agent not in set(await self.staff.agent_keys()):
                raise InvalidValue(
                    "agent", f"no agent {agent!r}: register the agent (POST /v1/agents) first"
                )
        if teams:
            known = set(await self.staff.team_keys())
            for index, team in enumerate(teams):
                if team not in known:
                    raise InvalidValue(
                        f"teams[{index}]", f"no team {team!r}: create it (POST /v1/teams) first"
                    )

    async def __call__(
        self,
        role: Role,
        name: str,
        *,
        agent: str | None = None,
        teams: Sequence[str] = (),
        expires_at: datetime | None = None,
        by: str,
    ) -> NewApiKey:
        await self.check(role, agent, teams)
        return await self.keys.create(
            role, name, agent=agent, teams=teams, expires_at=expires_at, by=by
        )
