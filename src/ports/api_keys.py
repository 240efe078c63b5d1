"""API keys, the roles and teams they carry, and the record of every change to them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from domain.shared.errors import InvalidValue
from domain.shared.keys import KEY_PATTERN

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from uuid import UUID

__all__ = [
    "ApiKey",
    "ApiKeyStore",
    "KeyChange",
    "NewApiKey",
    "Role",
    "check_agent_key",
    "check_key_scope",
]


_KEY = re.compile(KEY_PATTERN)


class Role(StrEnum):
    """What a key may do."""

    ADMIN = "admin"
    MARKETER = "marketer"
    AGENT = "agent"
    AUDITOR = "auditor"
    SERVICE = "service"


UNSCOPED_ROLES = frozenset({Role.ADMIN, Role.AUDITOR})
"""Roles that see every team by definition, so a list of teams would mean nothing."""


def _a(role: Role) -> str:
    """The role's name with its article: "an admin key", "a service key"."""
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value} key"


def check_agent_key(role: Role, agent: str | None) -> None:
    """Only an `agent` key names an agent, and the agent's key is a key (`ana.silva`);
    `InvalidValue` (a ValueError) naming the field otherwise."""
    if agent is None:
        return
    if role is not Role.AGENT:
        raise InvalidValue("agent", f"only an agent key names an agent, not {_a(role)}")
    if not _KEY.match(agent):
        raise InvalidValue("agent", f"{agent!r} is not an agent key like 'ana.silva'")


def check_key_scope(role: Role, agent: str | None, teams: Iterable[str]) -> frozenset[str]:
    """The teams a new key is limited to (empty: every team), checked with its agent."""
    check_agent_key(role, agent)
    scoped = frozenset(teams)
    if scoped and role in UNSCOPED_ROLES:
        raise InvalidValue("teams", f"{_a(role)} sees every team; it cannot be limited to teams")
    for team in sorted(scoped):
        if not _KEY.match(team):
            raise InvalidValue("teams", f"{team!r} is not a team key like 'support'")
    return scoped


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored: never the secret itself. `teams` empty: every team."""

    id: UUID
    name: str
    role: Role
    created_at: datetime
    agent: str | None = None  # the agent an `agent` key acts as (their key, e.g. `ana.silva`)
    teams: frozenset[str] = field(default_factory=frozenset)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def refusal(self, now: datetime) -> str | None:
        """Why the key may no longer be used at `now` ("revoked", "expired"), or None."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return None

    @property
    def author(self) -> str:
        """Who a change made with this key is recorded as made by, whichever edge it came by:
        the key's name, role and id."""
        return f"{self.name} ({self.role.value} key {self.id})"

    def may_act_for(self, team: str | None) -> bool:
        """Whether the key may send as, or read what belongs to, `team`."""
        return not self.teams or (team is not None and team in self.teams)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created or rotated; `secret` is shown this once."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One entry of a key's append-only change log: what changed, by which key, when."""

    key_id: UUID
    change: str  # created, changed (a given secret created again), rotated, revoked
    by: str  # the acting key as `author` records it, or `cli` / `demo`
    at: datetime
    detail: dict[str, Any]


class ApiKeyStore(Protocol):
    """Creates, rotates and revokes keys, and tells which key a secret is."""

    async def create(
        self,
        role: Role,
        name: str,
        *,
        secret: str | None = None,
        agent: str | None = None,
        teams: Iterable[str] = (),
        expires_at: datetime | None = None,
        by: str = "cli",
    ) -> NewApiKey:
        """A new key; `agent` (for the `agent` role only) names the agent it acts as; ValueError
        for a scope that does not fit the role."""
        ...

    async def identify(self, secret: str) -> ApiKey | None:
        """The key of a secret, revoked or expired ones too; None for an unknown secret."""
        ...

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The key of a secret if it may be used now."""
        ...

    async def get(self, key_id: UUID) -> ApiKey | None: ...

    async def all_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        ...

    async def rotate(self, key_id: UUID, *, by: str) -> NewApiKey | None:
        """A new secret for a key; the old one stops working at once. None: no such usable key."""
        ...

    async def revoke(self, key_id: UUID, *, by: str) -> ApiKey | None:
        """Revokes a key (again: no change); None for an unknown key."""
        ...

    async def changes(self, key_id: UUID) -> list[KeyChange]:
        """A key's change log, oldest first."""
        ...
