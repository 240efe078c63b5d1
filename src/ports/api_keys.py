"""API keys and the roles they carry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from domain.shared.keys import KEY_PATTERN

if TYPE_CHECKING:
    from datetime import datetime
    from uuid import UUID

__all__ = ["ApiKey", "ApiKeyStore", "NewApiKey", "Role", "check_agent_key"]


_AGENT_KEY = re.compile(KEY_PATTERN)


class Role(StrEnum):
    """What a key may do."""

    ADMIN = "admin"
    MARKETER = "marketer"
    AGENT = "agent"
    AUDITOR = "auditor"
    SERVICE = "service"


def check_agent_key(role: Role, agent: str | None) -> None:
    """Only an `agent` key names an agent, and the agent's key is a key (`ana.silva`)."""
    if agent is None:
        return
    if role is not Role.AGENT:
        raise ValueError(f"only an agent key names an agent, not a {role.value} key")
    if not _AGENT_KEY.match(agent):
        raise ValueError(f"{agent!r} is not an agent key like 'ana.silva'")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret itself."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    agent: str | None = None  # the agent an `agent` key acts as (their key, e.g. `ana.silva`)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created; `secret` is shown this once."""

    key: ApiKey
    secret: str


class ApiKeyStore(Protocol):
    """Creates keys and tells which key a secret is."""

    async def create(
        self, role: Role, name: str, *, secret: str | None = None, agent: str | None = None
    ) -> NewApiKey:
        """A new key; `agent` (for the `agent` role only) names the agent it acts as."""
        ...

    async def authenticate(self, secret: str) -> ApiKey | None: ...
