"""Who a request acts as: its key and, for an agent key, the agent and their teams.

`principal_of(connection)` is the one way a handler learns it (cached per request); as a
Litestar dependency, `PRINCIPAL` gives it as a `principal` parameter. An agent sees and acts
on their teams' conversations only (`Principal.may_see`, `Principal.actor`); admin and service
keys supervise every team. Who a key acts as is decided by `application.conversations.actors`
(`acting_agent_key`, `actor_of`), the rule NATS conversation commands follow too. A request
that stays open (the inbox's stream) follows its key's reach as it changes (`LiveReach`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException

from application.conversations.actors import (
    SUPERVISORS,
    Actor,
    MayNotAct,
    acting_agent_key,
    actor_of,
)
from application.queries.team_scope import EVERY_TEAM, TeamScope
from domain.conversation.aggregate import ActingAgent
from entrypoints.http.auth import current_key, key_now
from ports.api_keys import ApiKey, Role
from ports.staff import StaffDirectory

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

__all__ = ["PRINCIPAL", "REACH_SECONDS", "SUPERVISORS", "LiveReach", "Principal", "principal_of"]

_STATE_KEY = "chorus_principal"
REACH_SECONDS = 1.0
"""How long an open stream trusts what it read of its key and its agent's teams: taking an
agent off a team, or revoking their key, reaches their open streams within this (as the key
store's cache, `adapters.postgres.api_keys.CACHE_SECONDS`, reaches every process)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The key of a request, and the agent it acts as (None for a key that names no agent)."""

    key: ApiKey
    by: str  # who changes are recorded as made by
    agent: ActingAgent | None

    @property
    def supervises(self) -> bool:
        """Admin and service keys act on every team's conversations (a service key limited
        to teams, on those teams')."""
        return self.key.role in SUPERVISORS

    @property
    def sees_every_team(self) -> bool:
        """Admin and auditor keys, and service keys limited to no team, see every team."""
        return not self.key.teams and (self.supervises or self.key.role is Role.AUDITOR)

    @property
    def visible_teams(self) -> frozenset[str] | None:
        """The teams whose conversations the key sees; None for every team. An agent key sees
        its agent's teams (within the key's own teams, if it has any); a service key limited
        to teams, those; a marketer, none."""
        if self.sees_every_team:
            return None
        if self.agent is not None:
            return self.agent.teams & self.key.teams if self.key.teams else self.agent.teams
        if self.supervises:
            return self.key.teams
        return frozenset()

    @property
    def team_scope(self) -> TeamScope:
        """What of a customer the key reads: the sends (messages, decisions) of its teams, as
        `GET /v1/messages/{id}` allows them, and the conversations it sees in the inbox."""
        if self.sees_every_team:
            return EVERY_TEAM
        return TeamScope(self.key.teams or None, self.visible_teams)

    def may_see(self, team: str | None) -> bool:
        """Whether the key may see a conversation held by `team` (None: not routed yet, which
        only the keys that see every team do)."""
        visible = self.visible_teams
        return visible is None or (team is not None and team in visible)

    def actor(self) -> Actor:
        """Who acts on a conversation; 403 for a key that may not act on any. A key limited to
        teams acts as an agent on those teams only, so the desk refuses (`not-on-team`) any
        other team's conversation as it refuses an agent's (`actor_of`, which NATS commands
        carrying a key follow too)."""
        try:
            return actor_of(self.key, self.by, self.agent)
        except MayNotAct as refused:
            raise PermissionDeniedException(refused.detail) from None


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The request's principal, with the agent's teams as committed now."""
    state = connection.scope.setdefault("state", {})
    known: Principal | None = state.get(_STATE_KEY)
    if known is not None:
        return known
    principal = await _principal_of_key(connection, current_key(connection))
    state[_STATE_KEY] = principal
    return principal


async def _principal_of_key(
    connection: ASGIConnection[Any, Any, Any, Any], key: ApiKey
) -> Principal:
    agent = None
    acting = acting_agent_key(key)  # an agent key's agent; over HTTP no request names one
    if acting is not None:
        staff = await connection.app.state.dishka_container.get(StaffDirectory)
        agent = ActingAgent(acting, await staff.teams_of(acting))
    return Principal(key, key.author, agent)


class LiveReach:
    """The teams whose conversations an open stream's key sees now (None: every team), for
    `InboxQueries.changes` to ask before each batch it sends: the key is read again
    (NotAuthorizedException once it is revoked, expired or rotated) with its agent's teams as
    committed, at most once every REACH_SECONDS, so a stream open for hours costs a lookup a
    second at most (the key from the store's cache; an agent's teams from the database)."""

    def __init__(
        self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
    ) -> None:
        self.connection = connection
        self.visible = principal.visible_teams
        # monotonic time, not the Clock port: how old a lookup is is the process's business
        self.read_at = time.monotonic()

    async def __call__(self) -> frozenset[str] | None:
        if time.monotonic() - self.read_at >= REACH_SECONDS:
            principal = await _principal_of_key(self.connection, await key_now(self.connection))
            self.visible = principal.visible_teams
            self.read_at = time.monotonic()
        return self.visible


async def _principal(request: Request[Any, Any, Any]) -> Principal:
    return await principal_of(request)


PRINCIPAL = Provide(_principal)
"""`dependencies={"principal": PRINCIPAL}` on a controller: handlers take `principal:
Principal`."""
